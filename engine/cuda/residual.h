// The residual connection with the row-parallel layer's bias, added after the tensor-parallel
// all-reduce (CPU reference: CpuOps::residual, engine/cpu_stage.cpp).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

namespace moescope::engine::cuda {

// out [n,C] overwritten with x + z + bias (bias [C] or nullptr); out may alias x or z. T = float or
// __nv_bfloat16, computed in float.
template <typename T>
void residualAdd(T* out, const T* x, const T* z, const T* bias, int n, int C, cudaStream_t stream);

}  // namespace moescope::engine::cuda
