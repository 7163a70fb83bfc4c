// Cross-entropy of logits against target ids, with the softmax folded in (log-sum-exp in double).
#include <cmath>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

namespace {

// max and Σ exp(l − max) of one row
template <typename T>
inline void rowLogSumExp(const T* l, int V, T& maxv, double& sum) {
  maxv = l[0];
  for (int v = 1; v < V; ++v) maxv = l[v] > maxv ? l[v] : maxv;
  sum = 0;
  for (int v = 0; v < V; ++v) sum += std::exp(static_cast<double>(l[v] - maxv));
}

}  // namespace

template <typename T>
double crossEntropyForward(T* losses, const T* logits, const int32_t* targets, int n, int V) {
  double total = 0;
  for (int r = 0; r < n; ++r) {
    const T* l = logits + static_cast<size_t>(r) * V;
    T maxv;
    double sum;
    rowLogSumExp(l, V, maxv, sum);
    const double loss = std::log(sum) + static_cast<double>(maxv) - static_cast<double>(l[targets[r]]);
    if (losses) losses[r] = static_cast<T>(loss);
    total += loss;
  }
  return total;
}

template <typename T>
void crossEntropyBackward(T* dlogits, const T* logits, const int32_t* targets, T scale, int n, int V) {
  for (int r = 0; r < n; ++r) {
    const T* l = logits + static_cast<size_t>(r) * V;
    T* d = dlogits + static_cast<size_t>(r) * V;
    T maxv;
    double sum;
    rowLogSumExp(l, V, maxv, sum);
    const double inv = 1.0 / sum;
    for (int v = 0; v < V; ++v) {
      d[v] += scale * static_cast<T>(std::exp(static_cast<double>(l[v] - maxv)) * inv);
    }
    d[targets[r]] -= scale;
  }
}

template double crossEntropyForward<float>(float*, const float*, const int32_t*, int, int);
template double crossEntropyForward<double>(double*, const double*, const int32_t*, int, int);
template void crossEntropyBackward<float>(float*, const float*, const int32_t*, float, int, int);
template void crossEntropyBackward<double>(double*, const double*, const int32_t*, double, int, int);

}  // namespace moescope::engine::cpu
