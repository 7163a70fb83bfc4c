// Causal multi-head self-attention in bf16 on tensor cores, fused in the manner of FlashAttention-2
// (Dao, 2023): the forward pass walks the keys in tiles of 64 with an online softmax and keeps only each
// row's log-sum-exp; the backward pass recomputes the probabilities tile by tile, accumulates dK and dV
// in registers (one block per tile of keys) and dQ in fp32 through atomics. Nothing of size T×T is
// stored. Same contract as attention.h over a packed qkv [B,T,3·NH·D]; CPU reference: engine/cpu/ops.h
// attentionForward/attentionBackward. bf16 storage, fp32 accumulation; head sizes 64 and 128.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>

namespace moescope::engine::cuda {

// Whether the fused kernels handle head size D (the other sizes go through attention_cublas.h).
bool flashAttentionSupports(int D);
// Whether they can run on the current device: this build holds them compiled for sm_80 or later (they
// use ldmatrix, bf16 mma.sync and cp.async) and the device takes that code.
bool flashAttentionAvailable();

// Bytes of the backward pass's workspace: the fp32 dQ accumulator [B,T,NH·D] and rowsum(dO ⊙ O).
size_t flashAttentionWorkspaceBytes(int B, int Tlen, int NH, int D);

// out [B,T,NH·D] overwritten; lse [B,NH,T] overwritten with log Σ_{j<=i} exp(q_i·k_j / sqrt(D)).
void flashAttentionForward(__nv_bfloat16* out, float* lse, const __nv_bfloat16* qkv, int B, int Tlen, int NH,
                           int D, cudaStream_t stream);

// dqkv [B,T,3·NH·D] += the gradient. dout [B,T,NH·D]; qkv, out and lse as given to / produced by
// flashAttentionForward; workspace of flashAttentionWorkspaceBytes, overwritten.
void flashAttentionBackward(__nv_bfloat16* dqkv, const __nv_bfloat16* dout, const __nv_bfloat16* qkv,
                            const __nv_bfloat16* out, const float* lse, void* workspace, int B, int Tlen,
                            int NH, int D, cudaStream_t stream);

}  // namespace moescope::engine::cuda
