// The CUDA backend's stage: the stage pass (engine/stage_pass.h) over the CUDA kernels of this folder on
// one GPU and one stream, with cuBLASLt for the linear layers and NCCL for the communicators. Parameters
// are held as fp32 master weights, gradients and Adam state; the compute type is fp32 (the "fp32"
// precision, no TF32) or bf16 (the default: a bf16 copy of the weights refreshed by every update, bf16
// activations, fp32 accumulation, cuDNN's or the engine's fused attention where the shape allows). The
// fused paths (options, engine/cuda_kernel_options.h) each replace kernels of the stage pass's
// operations inside one operation, so the spans are the CPU backend's whatever the options.
//
// MoE routing never synchronises per expert: the kept assignments are ordered by expert on the device
// (buildExpertOrder), and the host reads the E+1 slot offsets once per MoE layer and micro-batch, which
// size every expert's matrix products (and, under DPMoE, the all-to-all).
//
// Tracing: with a recorder set, every span waits for the GPU at its end, so the host spans show GPU
// time (and no overlap), unless the GPU tracer is on (then spans are launch extents and CUPTI gives the
// GPU's); with tracing off nothing waits except where the host needs a number.
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/cuda_kernel_options.h"

namespace moescope::engine::cuda {

// setup's communicators must be NcclCommunicators of an NcclWorld.
std::unique_ptr<StageExecutor> makeCudaStage(const RankSetup& setup, int device,
                                             const CudaKernelOptions& options = {});

}  // namespace moescope::engine::cuda
