// Global-norm gradient clipping on the GPU, without a host round trip (CPU reference:
// engine/cpu/ops.h clipCoefficient). The squared norm is summed by accumulateSumOfSquares (sum.h).
#pragma once

#include <cuda_runtime_api.h>

namespace moescope::engine::cuda {

// *coef = min(1, maxNorm / (sqrt(*total) + 1e-6)), or 1 when maxNorm <= 0; both device scalars.
// coef is what adamwStep takes as gradScale.
void clipCoefficientDevice(float* coef, const double* total, double maxNorm, cudaStream_t stream);

}  // namespace moescope::engine::cuda
