// Token and position embedding on the GPU (CPU reference: engine/cpu/ops.h embeddingForward/Backward).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::engine::cuda {

// out [B,T,C] overwritten with wte[tokens[b,t],:] + wpe[t,:]. tokens [B,T] (in 0..V-1, not checked);
// wte [V,C]; wpe [>=T,C]. T = float or __nv_bfloat16.
template <typename T>
void embeddingForward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int Tlen, int C,
                      cudaStream_t stream);

// dwte [V,C] and dwpe [>=T,C] fp32 += the rows of dout [B,T,C] (atomics; either optional).
template <typename T>
void embeddingBackward(float* dwte, float* dwpe, const T* dout, const int32_t* tokens, int B, int Tlen, int C,
                       cudaStream_t stream);

}  // namespace moescope::engine::cuda
