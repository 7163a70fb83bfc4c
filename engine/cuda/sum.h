// A sum into a device accumulator, for the step's loss sums (CPU reference: the double sums of
// crossEntropyForward and CpuStage's aux sum).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace moescope::engine::cuda {

// *total += Σ x over x [n] fp32; total is one device double.
void accumulateSum(double* total, const float* x, size_t n, cudaStream_t stream);

}  // namespace moescope::engine::cuda
