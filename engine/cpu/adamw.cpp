// Global-norm gradient clipping and the AdamW update, with torch.optim.AdamW's arithmetic
// (single-tensor implementation): decoupled decay p·(1 − lr·wd), m by lerp, eps after sqrt(v̂).
#include <algorithm>
#include <cmath>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

template <typename T>
double sumOfSquares(const T* x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

double clipCoefficient(double totalNorm, double maxNorm) {
  if (maxNorm <= 0) return 1.0;
  return std::min(1.0, maxNorm / (totalNorm + 1e-6));
}

template <typename T>
void adamwStep(T* param, const T* grad, T* m, T* v, size_t n, const AdamWParams& hp, int step,
               double gradScale) {
  const T decay = static_cast<T>(1.0 - hp.lr * hp.weightDecay);
  const T w1 = static_cast<T>(1.0 - hp.beta1);
  const T b2 = static_cast<T>(hp.beta2);
  const T w2 = static_cast<T>(1.0 - hp.beta2);
  const double bc1 = 1.0 - std::pow(hp.beta1, step);
  const double bc2 = 1.0 - std::pow(hp.beta2, step);
  const T stepSize = static_cast<T>(hp.lr / bc1);
  const T bc2Sqrt = static_cast<T>(std::sqrt(bc2));
  const T eps = static_cast<T>(hp.eps);
  const T scale = static_cast<T>(gradScale);
  for (size_t i = 0; i < n; ++i) {
    const T g = grad[i] * scale;
    T p = param[i] * decay;
    m[i] += w1 * (g - m[i]);
    v[i] = v[i] * b2 + w2 * g * g;
    const T denom = std::sqrt(v[i]) / bc2Sqrt + eps;
    p -= stepSize * m[i] / denom;
    param[i] = p;
  }
}

template double sumOfSquares<float>(const float*, size_t);
template double sumOfSquares<double>(const double*, size_t);
template void adamwStep<float>(float*, const float*, float*, float*, size_t, const AdamWParams&, int, double);
template void adamwStep<double>(double*, const double*, double*, double*, size_t, const AdamWParams&, int,
                                double);

}  // namespace moescope::engine::cpu
