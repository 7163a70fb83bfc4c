// Cross-entropy from logits on the GPU (CPU reference: engine/cpu/ops.h crossEntropyForward/Backward).
// T = float or __nv_bfloat16; computed in float.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::engine::cuda {

// losses [n] fp32 overwritten with −log softmax(logits[i])[targets[i]]. logits [n,V]; targets [n].
template <typename T>
void crossEntropyForward(float* losses, const T* logits, const int32_t* targets, int n, int V,
                         cudaStream_t stream);

// dlogits [n,V] += scale · (softmax(logits[i]) − onehot(targets[i])) (scale = 1/N for a mean over N).
// dlogits may not alias logits.
template <typename T>
void crossEntropyBackward(T* dlogits, const T* logits, const int32_t* targets, float scale, int n, int V,
                          cudaStream_t stream);

// Both at once, for a last pipeline stage that needs the gradient anyway: losses [n] overwritten as by
// crossEntropyForward, and logits [n,V] overwritten with scale · (softmax − onehot) (the gradient, not
// accumulated). bf16 rows of up to 57,344 classes (V a multiple of 8, logits 16-byte aligned) are read
// once and written once, held in registers; other rows are read twice (crossEntropyForwardBackwardTwoReads).
template <typename T>
void crossEntropyForwardBackward(float* losses, T* logits, const int32_t* targets, float scale, int n, int V,
                                 cudaStream_t stream);

// The same result for any row: an online max and sum over one read, then the gradient from a second read.
// Exposed for the benchmark and tests, which set it beside the single-read path.
template <typename T>
void crossEntropyForwardBackwardTwoReads(float* losses, T* logits, const int32_t* targets, float scale, int n,
                                         int V, cudaStream_t stream);

}  // namespace moescope::engine::cuda
