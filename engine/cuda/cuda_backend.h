// The CUDA backend: one GPU per rank (rank r on GPU r), ranks communicating through NCCL, each running the
// stage pass over the CUDA operations (cuda_stage.h). check() refuses, as bad input, a layout needing more
// GPUs than the machine has and a model that does not fit in a GPU's free memory.
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/cuda_kernel_options.h"

namespace moescope::engine::cuda {

// GPUs CUDA can use here; 0 where there is no driver or device.
int deviceCount();

// options: the fused paths every rank's stage takes (moescope-cli train reads them from MOESCOPE_CUDA_*).
std::unique_ptr<Backend> makeCudaBackend(const CudaKernelOptions& options = {});

}  // namespace moescope::engine::cuda
