// The dense FFN's GELU folded into the matrix products around it by cuBLASLt's epilogues: the first
// layer's product writes its output after bias and GELU (GELU_AUX_BIAS, the pre-activation kept for the
// backward pass), and the second layer's input-gradient product applies the GELU derivative and sums the
// first layer's bias gradient (DGELU_BGRAD). Each saves the separate GELU and bias-gradient kernels' passes
// over an [n, F] matrix. Where cuBLASLt offers no such kernel (checked once per shape) the launchers run
// those kernels instead, with the same results. CPU reference: engine/cpu/ops.h linearForward,
// geluForward, linearBackward, geluBackward.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include "engine/cuda/cublaslt.h"

namespace moescope::engine::cuda {

// pre [n,out] = x Wᵀ + b and h [n,out] = gelu(pre), both overwritten. x [n,in]; w [out,in]; b [out] or
// nullptr. T = float or __nv_bfloat16. Returns whether the epilogue ran (false: the separate kernels).
template <typename T>
bool linearGeluForward(CublasLt& lt, T* h, T* pre, const T* x, const T* w, const T* b, int n, int in, int out,
                       cudaStream_t stream);

// The input gradient of y = gelu(pre) Wᵀ through the GELU: dpre [n,in] = gelu'(pre) ⊙ (dy W), overwritten,
// and dbPre [in] += Σ_rows dpre (fp32; optional), the bias gradient of the layer that made pre (through the
// epilogue in bf16, the sum is rounded to bf16 once before it is added: cuBLASLt writes it in D's type).
// dy [n,out]; w [out,in]; pre [n,in] as linearGeluForward left it. Returns whether the epilogue ran.
template <typename T>
bool linearBackwardDgelu(CublasLt& lt, T* dpre, float* dbPre, const T* dy, const T* w, const T* pre, int n,
                         int in, int out, cudaStream_t stream);

}  // namespace moescope::engine::cuda
