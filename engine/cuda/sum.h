// Sums into a device accumulator, through one kernel over an elementwise function: the step's loss sums
// (CPU reference: the double sums of crossEntropyForward and of the aux losses) and the squared
// gradient norm (CPU reference: engine/cpu/ops.h sumOfSquares).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace moescope::engine::cuda {

// *total += Σ x over x [n] fp32; total is one device double.
void accumulateSum(double* total, const float* x, size_t n, cudaStream_t stream);

// *total += Σ x² over x [n] fp32; total is one device double (zero it before the first tensor).
void accumulateSumOfSquares(double* total, const float* x, size_t n, cudaStream_t stream);

}  // namespace moescope::engine::cuda
