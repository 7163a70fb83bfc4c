// Elementwise helpers on the GPU: residual addition and conversions between fp32 and bf16 (CPU
// reference: engine/cpu/ops.h addInPlace).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>

namespace moescope::engine::cuda {

// y [n] += x [n]. T = float or __nv_bfloat16 (computed in float).
template <typename T>
void addInPlace(T* y, const T* x, size_t n, cudaStream_t stream);

// out [n] overwritten with in [n] converted (round to nearest even into bf16).
void convertToBf16(__nv_bfloat16* out, const float* in, size_t n, cudaStream_t stream);
void convertToFloat(float* out, const __nv_bfloat16* in, size_t n, cudaStream_t stream);
// out [n] += in [n] (a bf16 gradient added into an fp32 one).
void accumulateToFloat(float* out, const __nv_bfloat16* in, size_t n, cudaStream_t stream);

}  // namespace moescope::engine::cuda
