// The MoE router: softmax over experts, top-K picks, capacity in MODEL.md's order, and the Switch
// Transformer load-balancing loss.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

template <typename T>
void softmaxForward(T* p, const T* logits, int n, int E) {
  for (int r = 0; r < n; ++r) {
    const T* l = logits + static_cast<size_t>(r) * E;
    T* o = p + static_cast<size_t>(r) * E;
    T maxv = l[0];
    for (int e = 1; e < E; ++e) maxv = l[e] > maxv ? l[e] : maxv;
    double sum = 0;
    for (int e = 0; e < E; ++e) {
      o[e] = std::exp(l[e] - maxv);
      sum += o[e];
    }
    const T inv = static_cast<T>(1.0 / sum);
    for (int e = 0; e < E; ++e) o[e] *= inv;
  }
}

template <typename T>
void softmaxBackward(T* dlogits, const T* dp, const T* p, int n, int E) {
  for (int r = 0; r < n; ++r) {
    const T* pr = p + static_cast<size_t>(r) * E;
    const T* dpr = dp + static_cast<size_t>(r) * E;
    T* dl = dlogits + static_cast<size_t>(r) * E;
    double dot = 0;
    for (int e = 0; e < E; ++e) dot += static_cast<double>(dpr[e]) * pr[e];
    const T d = static_cast<T>(dot);
    for (int e = 0; e < E; ++e) dl[e] += pr[e] * (dpr[e] - d);
  }
}

template <typename T>
void routerTopK(int32_t* choice, const T* p, int n, int E, int K) {
  std::vector<uint8_t> taken(static_cast<size_t>(E));
  for (int r = 0; r < n; ++r) {
    const T* pr = p + static_cast<size_t>(r) * E;
    std::fill(taken.begin(), taken.end(), uint8_t{0});
    for (int k = 0; k < K; ++k) {
      int best = -1;
      for (int e = 0; e < E; ++e) {
        // strictly greater: among equal probabilities the lower index wins
        if (!taken[e] && (best < 0 || pr[e] > pr[best])) best = e;
      }
      taken[best] = 1;
      choice[static_cast<size_t>(r) * K + k] = best;
    }
  }
}

int expertCapacity(double capacityFactor, int n, int K, int E) {
  if (capacityFactor <= 0) return -1;
  return static_cast<int>(std::ceil(capacityFactor * n * K / E));
}

int routerCapacity(uint8_t* keep, int32_t* expertLoad, const int32_t* choice, int n, int E, int K,
                   int capacity) {
  std::vector<int32_t> load(static_cast<size_t>(E), 0);
  int dropped = 0;
  for (int k = 0; k < K; ++k) {
    for (int r = 0; r < n; ++r) {
      const size_t idx = static_cast<size_t>(r) * K + k;
      int32_t& l = load[static_cast<size_t>(choice[idx])];
      if (capacity < 0 || l < capacity) {
        keep[idx] = 1;
        ++l;
      } else {
        keep[idx] = 0;
        ++dropped;
      }
    }
  }
  if (expertLoad) {
    for (int e = 0; e < E; ++e) expertLoad[e] = load[static_cast<size_t>(e)];
  }
  return dropped;
}

template <typename T>
T auxLossForward(T* f, const T* p, const int32_t* choice, int n, int E, int K) {
  std::vector<double> count(static_cast<size_t>(E), 0.0);
  std::vector<double> probSum(static_cast<size_t>(E), 0.0);
  for (int r = 0; r < n; ++r) {
    count[static_cast<size_t>(choice[static_cast<size_t>(r) * K])] += 1;
    const T* pr = p + static_cast<size_t>(r) * E;
    for (int e = 0; e < E; ++e) probSum[static_cast<size_t>(e)] += pr[e];
  }
  double aux = 0;
  for (int e = 0; e < E; ++e) {
    const double fe = count[static_cast<size_t>(e)] / n;
    f[e] = static_cast<T>(fe);
    aux += fe * (probSum[static_cast<size_t>(e)] / n);
  }
  return static_cast<T>(E * aux);
}

template <typename T>
void auxLossBackward(T* dp, const T* f, T daux, int n, int E) {
  for (int e = 0; e < E; ++e) {
    const T g = daux * static_cast<T>(E) * f[e] / static_cast<T>(n);
    for (int r = 0; r < n; ++r) dp[static_cast<size_t>(r) * E + e] += g;
  }
}

#define MOESCOPE_INSTANTIATE(T)                                              \
  template void softmaxForward<T>(T*, const T*, int, int);                   \
  template void softmaxBackward<T>(T*, const T*, const T*, int, int);        \
  template void routerTopK<T>(int32_t*, const T*, int, int, int);            \
  template T auxLossForward<T>(T*, const T*, const int32_t*, int, int, int); \
  template void auxLossBackward<T>(T*, const T*, T, int, int);
MOESCOPE_INSTANTIATE(float)
MOESCOPE_INSTANTIATE(double)
#undef MOESCOPE_INSTANTIATE

}  // namespace moescope::engine::cpu
