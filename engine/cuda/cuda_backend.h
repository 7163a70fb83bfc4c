// The CUDA backend: one GPU per rank (rank r on GPU r), ranks communicating through NCCL, each running the
// stage pass over the CUDA operations (cuda_stage.h). check() refuses, as bad input, a layout needing more
// GPUs than the machine has and a model that does not fit in a GPU's free memory.
#pragma once

#include <memory>

#include "engine/backend.h"

namespace moescope::engine::cuda {

// GPUs CUDA can use here; 0 where there is no driver or device.
int deviceCount();

std::unique_ptr<Backend> makeCudaBackend();

}  // namespace moescope::engine::cuda
