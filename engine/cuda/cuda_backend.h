// The CUDA backend: one GPU per rank (rank r on GPU r), ranks communicating through NCCL, each running the
// stage pass over the CUDA operations (cuda_stage.h). check() refuses, as bad input, a layout needing more
// GPUs than the machine has and a model that does not fit in a GPU's free memory. Over several processes
// (CudaPlacement) a process runs its own ranks on its node's GPUs from the one its local rank names.
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/cuda/nccl_communicator.h"
#include "engine/cuda_kernel_options.h"

namespace moescope::engine::cuda {

// GPUs CUDA can use here; 0 where there is no driver or device.
int deviceCount();

// Which ranks this process runs and where. The default, ranks < 0: every rank, rank r on GPU r. A
// launcher's process p of K ranks each: first_rank p × K, ranks K, first_device local rank × K (one
// GPU per rank, the node's processes side by side), and `processes` to carry NCCL's ids.
struct CudaPlacement {
  int first_rank = 0;
  int ranks = -1;
  int first_device = 0;
  NcclProcesses processes;
};

// options: the fused paths every rank's stage takes (moescope-cli train reads them from MOESCOPE_CUDA_*).
std::unique_ptr<Backend> makeCudaBackend(const CudaKernelOptions& options = {}, CudaPlacement placement = {});

}  // namespace moescope::engine::cuda
