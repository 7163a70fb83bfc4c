// Causal multi-head self-attention over a packed qkv [B, T, 3·NH·D] (q | k | v blocks). The softmax
// probabilities are kept for the backward pass.
#include <cmath>
#include <vector>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

template <typename T>
void attentionForward(T* out, T* att, const T* qkv, int B, int Tlen, int NH, int D) {
  const int Cl = NH * D;
  const size_t row = static_cast<size_t>(3) * Cl;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
  for (int b = 0; b < B; ++b) {
    const T* base = qkv + static_cast<size_t>(b) * Tlen * row;
    for (int h = 0; h < NH; ++h) {
      for (int i = 0; i < Tlen; ++i) {
        const T* q = base + i * row + static_cast<size_t>(h) * D;
        T* a = att + ((static_cast<size_t>(b) * NH + h) * Tlen + i) * Tlen;
        T maxv = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          const T* k = base + j * row + Cl + static_cast<size_t>(h) * D;
          T dot = 0;
          for (int d = 0; d < D; ++d) dot += q[d] * k[d];
          dot *= scale;
          a[j] = dot;
          if (dot > maxv) maxv = dot;
        }
        double sum = 0;
        for (int j = 0; j <= i; ++j) {
          a[j] = std::exp(a[j] - maxv);
          sum += a[j];
        }
        const T inv = static_cast<T>(1.0 / sum);
        for (int j = 0; j <= i; ++j) a[j] *= inv;
        for (int j = i + 1; j < Tlen; ++j) a[j] = 0;
        T* o = out + (static_cast<size_t>(b) * Tlen + i) * Cl + static_cast<size_t>(h) * D;
        for (int d = 0; d < D; ++d) o[d] = 0;
        for (int j = 0; j <= i; ++j) {
          const T* v = base + j * row + 2 * static_cast<size_t>(Cl) + static_cast<size_t>(h) * D;
          const T w = a[j];
          for (int d = 0; d < D; ++d) o[d] += w * v[d];
        }
      }
    }
  }
}

template <typename T>
void attentionBackward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tlen, int NH, int D) {
  const int Cl = NH * D;
  const size_t row = static_cast<size_t>(3) * Cl;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
  std::vector<T> datt(static_cast<size_t>(Tlen));
  for (int b = 0; b < B; ++b) {
    const T* base = qkv + static_cast<size_t>(b) * Tlen * row;
    T* dbase = dqkv + static_cast<size_t>(b) * Tlen * row;
    for (int h = 0; h < NH; ++h) {
      const size_t qo = static_cast<size_t>(h) * D;
      const size_t ko = Cl + qo;
      const size_t vo = 2 * static_cast<size_t>(Cl) + qo;
      for (int i = 0; i < Tlen; ++i) {
        const T* a = att + ((static_cast<size_t>(b) * NH + h) * Tlen + i) * Tlen;
        const T* dout_i = dout + (static_cast<size_t>(b) * Tlen + i) * Cl + qo;
        // o_i = Σ_j a_ij v_j  →  da_ij = dout_i · v_j,  dv_j += a_ij dout_i
        double dotSum = 0;
        for (int j = 0; j <= i; ++j) {
          const T* v = base + j * row + vo;
          T* dv = dbase + j * row + vo;
          T dot = 0;
          for (int d = 0; d < D; ++d) {
            dot += dout_i[d] * v[d];
            dv[d] += a[j] * dout_i[d];
          }
          datt[j] = dot;
          dotSum += static_cast<double>(a[j]) * dot;
        }
        // softmax backward: ds_ij = a_ij (da_ij − Σ_l a_il da_il); s_ij = scale · q_i · k_j
        const T* q = base + i * row + qo;
        T* dq = dbase + i * row + qo;
        const T ds0 = static_cast<T>(dotSum);
        for (int j = 0; j <= i; ++j) {
          const T ds = a[j] * (datt[j] - ds0) * scale;
          const T* k = base + j * row + ko;
          T* dk = dbase + j * row + ko;
          for (int d = 0; d < D; ++d) {
            dq[d] += ds * k[d];
            dk[d] += ds * q[d];
          }
        }
      }
    }
  }
}

template void attentionForward<float>(float*, float*, const float*, int, int, int, int);
template void attentionForward<double>(double*, double*, const double*, int, int, int, int);
template void attentionBackward<float>(float*, const float*, const float*, const float*, int, int, int, int);
template void attentionBackward<double>(double*, const double*, const double*, const double*, int, int, int,
                                        int);

}  // namespace moescope::engine::cpu
