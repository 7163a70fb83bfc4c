// The CUDA backend's choice of kernels for each fused path, read from the environment (MOESCOPE_CUDA_*):
// one table (base/env_switches.h) holds every variable, the values it takes (the first is the default)
// and what each does; moescope-cli train reads it once, before anything runs, and refuses a value the
// table does not list. Each path can be switched off on its own, so that one GPU session measures each
// against what it replaced (bench/engine/run_h200_perf.sh, docs/bench-gpu-perf.md).
//
// Plain C++ in the engine, not in engine/cuda: a build without CUDA refuses a bad value the same way.
// Paths that would change the fp32 mode's numerics (cuDNN's attention, the GELU epilogues) apply in bf16
// only; the others compute the same function in fp32 to rounding (engine/cuda/kernel_choice.h says what
// a given run takes).
#pragma once

#include <functional>
#include <span>
#include <string>

#include "base/env_switches.h"

namespace moescope::engine {

enum class AttentionKernel {
  Cudnn,   // cuDNN's fused SDPA where it takes the shape (bf16), else as Flash
  Flash,   // the engine's fused kernels (bf16, head size 64 or 128), else as Cublas
  Cublas,  // cuBLASLt's products, the T x T probabilities kept
};
const char* attentionKernelName(AttentionKernel kernel);  // "cudnn", "flash", "cublas"

// The FFN backward's GELU' (bf16): after the second layer's input-gradient product.
enum class DgeluEpilogue {
  Off,       // a kernel of its own, in place over the activation gradient; the fc bias gradient from BGRADB
  Alone,     // in that product's epilogue (DGELU); the fc bias gradient from BGRADB
  WithBias,  // in that product's epilogue with the fc bias gradient (DGELU_BGRAD)
};

struct CudaKernelOptions {
  AttentionKernel attention = AttentionKernel::Cudnn;  // MOESCOPE_CUDA_ATTENTION
  bool gelu_epilogue = true;  // MOESCOPE_CUDA_GELU_EPILOGUE: bf16 FFN GELU in cuBLASLt's epilogue
  DgeluEpilogue dgelu_epilogue = DgeluEpilogue::Alone;  // MOESCOPE_CUDA_DGELU_EPILOGUE: bf16 GELU' likewise
  bool bias_epilogue = false;    // MOESCOPE_CUDA_BIAS_EPILOGUE: bias gradients from BGRADB
  bool residual_norm = true;     // MOESCOPE_CUDA_RESIDUAL_NORM: residual add + LayerNorm in one kernel
  bool adamw_one_launch = true;  // MOESCOPE_CUDA_ADAMW: every tensor's AdamW in one launch
  bool grouped_experts = false;  // MOESCOPE_CUDA_EXPERTS: a rank's experts as one grouped GEMM
  bool keep_gelu_output = true;  // MOESCOPE_CUDA_GELU_OUTPUT: the dense FFN's GELU output kept, or recomputed
  bool operator==(const CudaKernelOptions&) const = default;
};

// Every fused path off: the kernels the engine ran before them, for A/B measurements and tests.
CudaKernelOptions unfusedKernelOptions();

std::span<const EnvVariable<CudaKernelOptions>> cudaKernelVariables();

// Every variable of the table through getenv (unset or empty: its default). Throws
// std::invalid_argument naming the variable, the value and the values it takes.
CudaKernelOptions readCudaKernelOptions(const std::function<const char*(const char*)>& getenv);
CudaKernelOptions readCudaKernelOptions();  // from the process's environment

// The table as help text, a line per value; the options as the variables that give them.
std::string cudaKernelOptionsHelp();
std::string cudaKernelOptionsText(const CudaKernelOptions& options);

}  // namespace moescope::engine
