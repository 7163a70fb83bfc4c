// LayerNorm over the last dimension on the GPU, eps 1e-5, biased variance (CPU reference:
// engine/cpu/ops.h layerNormForward/layerNormBackward). T = float or __nv_bfloat16, computed in float.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

namespace moescope::engine::cuda {

// out [n,C] overwritten; mean [n], rstd [n] fp32 overwritten; x [n,C]; weight [C]; bias [C].
template <typename T>
void layerNormForward(T* out, float* mean, float* rstd, const T* x, const T* weight, const T* bias, int n,
                      int C, cudaStream_t stream);

// dx [n,C] += ...; dweight [C], dbias [C] fp32 += ... (each optional: nullptr skips; weight is needed
// only with dx). dout [n,C]; x [n,C];
// weight [C]; mean, rstd [n] from layerNormForward. dx by rows; the parameter gradients by columns, in
// a second kernel whose blocks each add their part of the rows with one atomic a column.
template <typename T>
void layerNormBackward(T* dx, float* dweight, float* dbias, const T* dout, const T* x, const T* weight,
                       const float* mean, const float* rstd, int n, int C, cudaStream_t stream);

}  // namespace moescope::engine::cuda
