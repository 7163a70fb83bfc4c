// What a run takes of the fused paths on this machine: the options (engine/cuda_kernel_options.h) where
// they apply, the next kernel down where they do not. One answer for the stage (cuda_stage.cpp), the
// memory estimate (memory_estimate.h) and the run's description, so the three cannot disagree.
#pragma once

#include <string>

#include "engine/config.h"
#include "engine/cuda_kernel_options.h"

namespace moescope::engine::cuda {

// cuDNN where asked, in bf16, loadable here and taking the shape (cudnn_attention.h); else the fused
// kernels where asked, in bf16 and taking the head size (flash_attention.h); else cuBLASLt. Needs a
// current device only to ask about the fused kernels.
AttentionKernel attentionKernel(const Config& config, const CudaKernelOptions& options);

// The options as this config runs them: the attention resolved, the bf16-only paths off in fp32.
CudaKernelOptions effectiveKernelOptions(const Config& config, const CudaKernelOptions& options);

// One line for logs and the run file: the effective options as variables, and why attention is not
// what was asked where it is not ("MOESCOPE_CUDA_ATTENTION=flash (cuDNN: <reason>) ...").
std::string describeKernels(const Config& config, const CudaKernelOptions& options);

}  // namespace moescope::engine::cuda
