// The CUDA backend's StageExecutor: one rank's shard of MODEL.md's model on one GPU, with the CPU
// reference executor's orchestration (engine/cpu_stage.h): tensor parallelism (Megatron column/row
// parallel), PPMoE (the local experts' rows gathered by index slicing, one tp all-reduce), DPMoE
// (all-to-all dispatch and return over the dp group), pipeline send/recv, the dp gradient all-reduce,
// global-norm clipping and AdamW, all on the device. Parameters are held as fp32 master weights,
// gradients and Adam state; the compute type T is float (the "fp32" precision) or bf16 (the default:
// a bf16 copy of the weights refreshed by every update, bf16 activations, fp32 accumulation).
//
// MoE routing never synchronises per expert: the kept assignments are ordered by expert on the device
// (buildExpertOrder), and the host reads the E+1 slot offsets once per MoE layer and micro-batch, which
// size every expert's matrix products (and, under DPMoE, the all-to-all).
//
// Tracing: with a recorder set, every span waits for the GPU at its end, so the host spans show GPU
// time (and no overlap); with tracing off nothing waits except where the host needs a number.
#pragma once

#include <memory>

#include "engine/backend.h"

namespace moescope::engine::cuda {

// What one rank needs on its GPU for a config: parameters with their gradients and Adam state, and
// the activations of a step (an estimate, without cuBLAS and NCCL's own buffers).
struct MemoryEstimate {
  int64_t parameters = 0;   // elements held by the rank
  int64_t state_bytes = 0;  // master weights, compute copy, gradients, Adam moments
  int64_t activation_bytes = 0;
  int64_t totalBytes() const { return state_bytes + activation_bytes; }
};
MemoryEstimate estimateMemory(const Config& config, const Layout& layout, const RankCoord& coord);

// setup's communicators must be NcclCommunicators of an NcclWorld.
std::unique_ptr<StageExecutor> makeCudaStage(const RankSetup& setup, int device);

}  // namespace moescope::engine::cuda
