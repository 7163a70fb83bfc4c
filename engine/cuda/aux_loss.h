// The Switch Transformer load-balancing loss of one routing group on the GPU (CPU reference:
// engine/cpu/ops.h auxLossForward/auxLossBackward): aux = E · Σ_e f_e · P_e, f_e the fraction of tokens
// whose first choice is e (a constant), P_e the mean router probability of e.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::engine::cuda {

inline constexpr int kAuxLossMaxExperts = 256;

// f [E] and probMean [E] overwritten; aux (one float, optional) overwritten with the loss. p [n,E]
// fp32 router probabilities; choice [n,K]. E <= 256; one block, no atomics on global memory.
void auxLossForward(float* f, float* probMean, float* aux, const float* p, const int32_t* choice, int n,
                    int E, int K, cudaStream_t stream);

// dp [n,E] += daux · E · f_e / n.
void auxLossBackward(float* dp, const float* f, float daux, int n, int E, cudaStream_t stream);

}  // namespace moescope::engine::cuda
