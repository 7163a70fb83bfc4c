// The residual add and the LayerNorm after it in one pass (CPU reference: the residual loop of the
// stage, then engine/cpu/ops.h layerNormForward): r = x + z + bias is written once and normalised from
// registers, where residualAdd then layerNormForward write r and read it back. The backward pass needs
// nothing new: the gradient of r is the residual's plus layerNormBackward's (which adds into dx).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

namespace moescope::engine::cuda {

// r [n,C] = x + z + bias, rounded to T as residualAdd rounds it (bias [C] or nullptr; r may alias x or z);
// out [n,C] = LayerNorm(r; weight, lnBias), eps 1e-5, biased variance; mean, rstd [n] fp32. All
// overwritten. T = float or __nv_bfloat16, computed in float.
template <typename T>
void residualLayerNormForward(T* r, T* out, float* mean, float* rstd, const T* x, const T* z, const T* bias,
                              const T* weight, const T* lnBias, int n, int C, cudaStream_t stream);

}  // namespace moescope::engine::cuda
