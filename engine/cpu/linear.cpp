// Linear layer y = x Wᵀ + b, W [out, in].
//
// The forward pass computes tiles of kRows rows × kOuts outputs at once, each dot product held in
// kLanes independent partial sums, so the compiler vectorises the inner loop without reassociating
// floating-point sums (no -ffast-math) and every loaded row of x and W is used several times.
#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

namespace {

constexpr int kLanes = 8;

// y[r, o] for r in [r0, r0+R), o in [o0, o0+O).
template <typename T, int R, int O>
inline void linearTile(T* y, const T* x, const T* w, const T* b, int r0, int o0, int in, int out) {
  T acc[R][O][kLanes] = {};
  const int inMain = in - in % kLanes;
  const T* xr[R];
  const T* wo[O];
  for (int r = 0; r < R; ++r) xr[r] = x + static_cast<size_t>(r0 + r) * in;
  for (int o = 0; o < O; ++o) wo[o] = w + static_cast<size_t>(o0 + o) * in;
  for (int i = 0; i < inMain; i += kLanes) {
    for (int r = 0; r < R; ++r) {
      for (int o = 0; o < O; ++o) {
        for (int l = 0; l < kLanes; ++l) acc[r][o][l] += xr[r][i + l] * wo[o][i + l];
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int o = 0; o < O; ++o) {
      T sum = 0;
      for (int l = 0; l < kLanes; ++l) sum += acc[r][o][l];
      for (int i = inMain; i < in; ++i) sum += xr[r][i] * wo[o][i];
      if (b) sum += b[o0 + o];
      y[static_cast<size_t>(r0 + r) * out + o0 + o] = sum;
    }
  }
}

template <typename T, int R>
inline void linearRows(T* y, const T* x, const T* w, const T* b, int r0, int in, int out) {
  constexpr int O = 2;
  int o = 0;
  for (; o + O <= out; o += O) linearTile<T, R, O>(y, x, w, b, r0, o, in, out);
  for (; o < out; ++o) linearTile<T, R, 1>(y, x, w, b, r0, o, in, out);
}

}  // namespace

template <typename T>
void linearForward(T* y, const T* x, const T* w, const T* b, int n, int in, int out) {
  constexpr int R = 4;
  int r = 0;
  for (; r + R <= n; r += R) linearRows<T, R>(y, x, w, b, r, in, out);
  for (; r < n; ++r) linearRows<T, 1>(y, x, w, b, r, in, out);
}

template <typename T>
void linearBackward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, int n, int in, int out) {
  if (dx) {
    // dx[r, :] += Σ_o dy[r, o] · W[o, :]
    for (int r = 0; r < n; ++r) {
      T* dxr = dx + static_cast<size_t>(r) * in;
      const T* dyr = dy + static_cast<size_t>(r) * out;
      for (int o = 0; o < out; ++o) {
        const T d = dyr[o];
        const T* wo = w + static_cast<size_t>(o) * in;
        for (int i = 0; i < in; ++i) dxr[i] += d * wo[i];
      }
    }
  }
  if (dw) {
    // dW[o, :] += Σ_r dy[r, o] · x[r, :]
    for (int o = 0; o < out; ++o) {
      T* dwo = dw + static_cast<size_t>(o) * in;
      for (int r = 0; r < n; ++r) {
        const T d = dy[static_cast<size_t>(r) * out + o];
        const T* xr = x + static_cast<size_t>(r) * in;
        for (int i = 0; i < in; ++i) dwo[i] += d * xr[i];
      }
    }
  }
  if (db) {
    for (int r = 0; r < n; ++r) {
      const T* dyr = dy + static_cast<size_t>(r) * out;
      for (int o = 0; o < out; ++o) db[o] += dyr[o];
    }
  }
}

template void linearForward<float>(float*, const float*, const float*, const float*, int, int, int);
template void linearForward<double>(double*, const double*, const double*, const double*, int, int, int);
template void linearBackward<float>(float*, float*, float*, const float*, const float*, const float*, int,
                                    int, int);
template void linearBackward<double>(double*, double*, double*, const double*, const double*, const double*,
                                     int, int, int);

}  // namespace moescope::engine::cpu
