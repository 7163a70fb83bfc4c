// AdamW on the GPU over fp32 master weights (CPU reference: engine/cpu/ops.h adamwStep).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>

#include "engine/cpu/ops.h"  // AdamWParams

namespace moescope::engine::cuda {

using cpu::AdamWParams;

// One torch.optim.AdamW step on n parameters (step = 1, 2, ...), with the CPU reference's arithmetic.
// param, m, v [n] fp32, updated in place; grad [n] fp32, read only. gradScale: a device scalar the
// gradients are multiplied by first (the clipping coefficient from clipCoefficientDevice), or nullptr
// for 1. paramBf16 [n], optional: overwritten with the updated parameters rounded to bf16 (the compute
// copy of the bf16 mode).
void adamwStep(float* param, __nv_bfloat16* paramBf16, const float* grad, float* m, float* v, size_t n,
               const AdamWParams& hp, int step, const float* gradScale, cudaStream_t stream);

}  // namespace moescope::engine::cuda
