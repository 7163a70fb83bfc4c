// LayerNorm over the last dimension (torch.nn.LayerNorm): biased variance, eps 1e-5. The row
// statistics are accumulated in double.
#include <cmath>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

template <typename T>
void layerNormForward(T* out, T* mean, T* rstd, const T* x, const T* weight, const T* bias, int n, int C) {
  for (int r = 0; r < n; ++r) {
    const T* xr = x + static_cast<size_t>(r) * C;
    T* o = out + static_cast<size_t>(r) * C;
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += xr[c];
    const double mu = sum / C;
    double var = 0;
    for (int c = 0; c < C; ++c) {
      const double d = xr[c] - mu;
      var += d * d;
    }
    var /= C;
    const T m = static_cast<T>(mu);
    const T s = static_cast<T>(1.0 / std::sqrt(var + kLayerNormEps));
    for (int c = 0; c < C; ++c) o[c] = (xr[c] - m) * s * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = s;
  }
}

template <typename T>
void layerNormBackward(T* dx, T* dweight, T* dbias, const T* dout, const T* x, const T* weight, const T* mean,
                       const T* rstd, int n, int C) {
  for (int r = 0; r < n; ++r) {
    const T* xr = x + static_cast<size_t>(r) * C;
    const T* dr = dout + static_cast<size_t>(r) * C;
    T* dxr = dx ? dx + static_cast<size_t>(r) * C : nullptr;
    const T m = mean[r];
    const T s = rstd[r];
    // dnorm = weight ⊙ dout; dx = s · (dnorm − mean(dnorm) − norm · mean(dnorm ⊙ norm))
    double dnormMean = 0;
    double dnormNormMean = 0;
    for (int c = 0; dxr && c < C; ++c) {
      const T norm = (xr[c] - m) * s;
      const T dnorm = weight[c] * dr[c];
      dnormMean += dnorm;
      dnormNormMean += static_cast<double>(dnorm) * norm;
    }
    const T a = static_cast<T>(dnormMean / C);
    const T bb = static_cast<T>(dnormNormMean / C);
    for (int c = 0; c < C; ++c) {
      const T norm = (xr[c] - m) * s;
      if (dxr) dxr[c] += (weight[c] * dr[c] - a - norm * bb) * s;
      if (dweight) dweight[c] += norm * dr[c];
      if (dbias) dbias[c] += dr[c];
    }
  }
}

template void layerNormForward<float>(float*, float*, float*, const float*, const float*, const float*, int,
                                      int);
template void layerNormForward<double>(double*, double*, double*, const double*, const double*, const double*,
                                       int, int);
template void layerNormBackward<float>(float*, float*, float*, const float*, const float*, const float*,
                                       const float*, const float*, int, int);
template void layerNormBackward<double>(double*, double*, double*, const double*, const double*,
                                        const double*, const double*, const double*, int, int);

}  // namespace moescope::engine::cpu
