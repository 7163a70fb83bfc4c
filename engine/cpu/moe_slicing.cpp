// PPMoE index slicing: the rows of the tokens routed to one expert are gathered into a contiguous
// buffer, the expert runs on it, and its outputs, weighted by the router probabilities, are added back
// to their tokens.
#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

int expertRows(int32_t* rows, const int32_t* choice, const uint8_t* keep, int n, int K, int expert) {
  int m = 0;
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < K; ++k) {
      const size_t idx = static_cast<size_t>(r) * K + k;
      if (choice[idx] == expert && (keep == nullptr || keep[idx])) {
        rows[m++] = r;
        break;
      }
    }
  }
  return m;
}

template <typename T>
void gatherRows(T* out, const T* x, const int32_t* rows, int m, int C) {
  for (int i = 0; i < m; ++i) {
    const T* src = x + static_cast<size_t>(rows[i]) * C;
    T* dst = out + static_cast<size_t>(i) * C;
    for (int c = 0; c < C; ++c) dst[c] = src[c];
  }
}

template <typename T>
void gatherRowsBackward(T* dx, const T* dout, const int32_t* rows, int m, int C) {
  for (int i = 0; i < m; ++i) {
    const T* src = dout + static_cast<size_t>(i) * C;
    T* dst = dx + static_cast<size_t>(rows[i]) * C;
    for (int c = 0; c < C; ++c) dst[c] += src[c];
  }
}

template <typename T>
void scatterAddWeighted(T* y, const T* src, const T* p, const int32_t* rows, int m, int C, int E,
                        int expert) {
  for (int i = 0; i < m; ++i) {
    const size_t r = static_cast<size_t>(rows[i]);
    const T w = p[r * E + expert];
    const T* s = src + static_cast<size_t>(i) * C;
    T* dst = y + r * C;
    for (int c = 0; c < C; ++c) dst[c] += w * s[c];
  }
}

template <typename T>
void scatterAddWeightedBackward(T* dsrc, T* dp, const T* dy, const T* src, const T* p, const int32_t* rows,
                                int m, int C, int E, int expert) {
  for (int i = 0; i < m; ++i) {
    const size_t r = static_cast<size_t>(rows[i]);
    const T* d = dy + r * C;
    if (dsrc) {
      const T w = p[r * E + expert];
      T* ds = dsrc + static_cast<size_t>(i) * C;
      for (int c = 0; c < C; ++c) ds[c] += w * d[c];
    }
    if (dp) {
      const T* s = src + static_cast<size_t>(i) * C;
      T dot = 0;
      for (int c = 0; c < C; ++c) dot += d[c] * s[c];
      dp[r * E + expert] += dot;
    }
  }
}

#define MOESCOPE_INSTANTIATE(T)                                                                          \
  template void gatherRows<T>(T*, const T*, const int32_t*, int, int);                                   \
  template void gatherRowsBackward<T>(T*, const T*, const int32_t*, int, int);                           \
  template void scatterAddWeighted<T>(T*, const T*, const T*, const int32_t*, int, int, int, int);       \
  template void scatterAddWeightedBackward<T>(T*, T*, const T*, const T*, const T*, const int32_t*, int, \
                                              int, int, int);
MOESCOPE_INSTANTIATE(float)
MOESCOPE_INSTANTIATE(double)
#undef MOESCOPE_INSTANTIATE

}  // namespace moescope::engine::cpu
