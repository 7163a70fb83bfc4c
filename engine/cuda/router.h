// The MoE router on the GPU: softmax over experts with top-K picks, capacity in MODEL.md's order, and
// the softmax backward (CPU reference: engine/cpu/ops.h softmaxForward, routerTopK, routerCapacity,
// softmaxBackward).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::engine::cuda {

inline constexpr int kRouterMaxK = 8;
inline constexpr int kRouterMaxExperts = 256;

// p [n,E] fp32 overwritten with the row softmax of logits [n,E]; choice [n,K] overwritten with each
// token's K picks in order of decreasing p, ties to the lower expert index. 1 <= K <= min(E, 8).
template <typename T>
void routerSoftmaxTopK(float* p, int32_t* choice, const T* logits, int n, int E, int K, cudaStream_t stream);

// keep [n,K] overwritten (1 kept, 0 dropped): assignments taken as all first choices in token order,
// then all second choices, ..., each expert accepting at most `capacity` (< 0: no limit). expertLoad
// [E] (optional) overwritten with the kept assignments per expert; dropped (optional, one int32)
// overwritten with the number dropped. One routing group of n tokens per call; E <= 256. Runs as one
// block.
void routerCapacity(uint8_t* keep, int32_t* expertLoad, int32_t* dropped, const int32_t* choice, int n, int E,
                    int K, int capacity, cudaStream_t stream);

// dlogits [n,E] fp32 += p ⊙ (dp − Σ_e dp·p) row-wise; dp, p [n,E] fp32.
void routerSoftmaxBackward(float* dlogits, const float* dp, const float* p, int n, int E,
                           cudaStream_t stream);

}  // namespace moescope::engine::cuda
