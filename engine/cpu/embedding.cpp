// Token and position embedding: out = wte[tokens] + wpe[0..T-1].
#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

template <typename T>
void embeddingForward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int Tlen, int C) {
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < Tlen; ++t) {
      const size_t bt = static_cast<size_t>(b) * Tlen + t;
      T* o = out + bt * C;
      const T* we = wte + static_cast<size_t>(tokens[bt]) * C;
      const T* pe = wpe + static_cast<size_t>(t) * C;
      for (int c = 0; c < C; ++c) o[c] = we[c] + pe[c];
    }
  }
}

template <typename T>
void embeddingBackward(T* dwte, T* dwpe, const T* dout, const int32_t* tokens, int B, int Tlen, int C) {
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < Tlen; ++t) {
      const size_t bt = static_cast<size_t>(b) * Tlen + t;
      const T* d = dout + bt * C;
      if (dwte) {
        T* dwe = dwte + static_cast<size_t>(tokens[bt]) * C;
        for (int c = 0; c < C; ++c) dwe[c] += d[c];
      }
      if (dwpe) {
        T* dpe = dwpe + static_cast<size_t>(t) * C;
        for (int c = 0; c < C; ++c) dpe[c] += d[c];
      }
    }
  }
}

#define MOESCOPE_INSTANTIATE(T)                                                             \
  template void embeddingForward<T>(T*, const int32_t*, const T*, const T*, int, int, int); \
  template void embeddingBackward<T>(T*, T*, const T*, const int32_t*, int, int, int);
MOESCOPE_INSTANTIATE(float)
MOESCOPE_INSTANTIATE(double)
#undef MOESCOPE_INSTANTIATE

}  // namespace moescope::engine::cpu
