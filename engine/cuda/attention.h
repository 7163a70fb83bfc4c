// Causal multi-head self-attention on the GPU over a packed qkv [B,T,3·NH·D] (q | k | v blocks, head h
// at columns h·D..h·D+D−1 of each), memory-efficient: the forward pass keeps only each row's
// log-sum-exp of the scores, never the T×T probabilities, and the backward pass recomputes them.
// CPU reference: engine/cpu/ops.h attentionForward/attentionBackward (which keeps the probabilities).
// T = float or __nv_bfloat16, computed in float; D <= 256.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

namespace moescope::engine::cuda {

inline constexpr int kAttentionMaxHeadSize = 256;

// out [B,T,NH·D] overwritten; lse [B,NH,T] fp32 overwritten with log Σ_j exp(score_ij) of each row.
template <typename T>
void attentionForward(T* out, float* lse, const T* qkv, int B, int Tlen, int NH, int D, cudaStream_t stream);

// dqkv [B,T,3·NH·D] += the gradient. dout [B,T,NH·D]; qkv, out and lse as given to / produced by
// attentionForward; workspace [B,NH,T] fp32 scratch, overwritten.
template <typename T>
void attentionBackward(T* dqkv, const T* dout, const T* qkv, const T* out, const float* lse, float* workspace,
                       int B, int Tlen, int NH, int D, cudaStream_t stream);

}  // namespace moescope::engine::cuda
