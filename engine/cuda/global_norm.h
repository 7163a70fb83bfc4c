// Global-norm gradient clipping on the GPU, without a host round trip (CPU reference:
// engine/cpu/ops.h sumOfSquares, clipCoefficient).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace moescope::engine::cuda {

// *total += Σ x² over x [n] fp32; total is one device double (zero it before the first tensor).
void accumulateSumOfSquares(double* total, const float* x, size_t n, cudaStream_t stream);

// *coef = min(1, maxNorm / (sqrt(*total) + 1e-6)), or 1 when maxNorm <= 0; both device scalars.
// coef is what adamwStep takes as gradScale.
void clipCoefficientDevice(float* coef, const double* total, double maxNorm, cudaStream_t stream);

}  // namespace moescope::engine::cuda
