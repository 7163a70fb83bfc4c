// What one rank of the CUDA backend needs on its GPU for a config, so that the backend refuses a model
// that does not fit before any work starts (cuda_backend.h).
#pragma once

#include <cstdint>

#include "engine/config.h"
#include "engine/cuda_kernel_options.h"
#include "engine/layout.h"

namespace moescope::engine::cuda {

// Parameters with their gradients and Adam state, and the activations of a step (an estimate, without
// cuBLAS and NCCL's own buffers).
struct MemoryEstimate {
  int64_t parameters = 0;   // elements held by the rank
  int64_t state_bytes = 0;  // master weights, compute copy, gradients, Adam moments
  int64_t activation_bytes = 0;
  int64_t totalBytes() const { return state_bytes + activation_bytes; }
};
// options: the fused paths the run takes (the attention's and the GELU epilogue's memory differ).
MemoryEstimate estimateMemory(const Config& config, const Layout& layout, const RankCoord& coord,
                              const CudaKernelOptions& options = {});

}  // namespace moescope::engine::cuda
