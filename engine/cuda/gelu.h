// GELU, tanh approximation, on the GPU (CPU reference: engine/cpu/ops.h geluForward/geluBackward).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>

namespace moescope::engine::cuda {

// y [n] overwritten (may alias x); x [n]. T = float or __nv_bfloat16; computed in float.
template <typename T>
void geluForward(T* y, const T* x, size_t n, cudaStream_t stream);

// dx [n] += gelu'(x) · dy (accumulated); x [n] the forward input; dy [n].
template <typename T>
void geluBackward(T* dx, const T* x, const T* dy, size_t n, cudaStream_t stream);

// d [n] = gelu'(x) · d in place: the GELU gradient of an output gradient nothing else needs.
template <typename T>
void geluBackwardInPlace(T* d, const T* x, size_t n, cudaStream_t stream);

}  // namespace moescope::engine::cuda
