// Causal multi-head self-attention through cuBLASLt's batched matrix products (tensor cores), the
// T×T probabilities kept for the backward pass: q, k and v are laid out per head ([B·NH, T, D]),
// S = q kᵀ / sqrt(D) in fp32, a causal row softmax into P (storage type), o = P v, and the backward
// products dV = Pᵀ dO, dP = dO vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS k / sqrt(D),
// dK = dSᵀ q / sqrt(D). The products compute the full T×T square (twice the causal work) but run at
// tensor-core speed. Same contract as attention.h over a packed qkv [B,T,3·NH·D]; CPU reference:
// engine/cpu/ops.h attentionForward/attentionBackward. T = float or __nv_bfloat16.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>

#include "engine/cuda/linear.h"

namespace moescope::engine::cuda {

// Bytes of the workspace both passes need.
size_t attentionCublasWorkspaceBytes(int B, int Tlen, int NH, int D, size_t elementSize);

// out [B,T,NH·D] overwritten; probs [B,NH,T,T] overwritten (kept for the backward pass).
template <typename T>
void attentionCublasForward(CublasLt& lt, T* out, T* probs, const T* qkv, void* workspace, int B, int Tlen,
                            int NH, int D, cudaStream_t stream);

// dqkv [B,T,3·NH·D] += the gradient. dout [B,T,NH·D]; qkv and probs as given to / produced by the
// forward pass.
template <typename T>
void attentionCublasBackward(CublasLt& lt, T* dqkv, const T* dout, const T* qkv, const T* probs,
                             void* workspace, int B, int Tlen, int NH, int D, cudaStream_t stream);

}  // namespace moescope::engine::cuda
