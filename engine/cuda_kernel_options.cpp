#include "engine/cuda_kernel_options.h"

#include <array>
#include <cstdlib>

namespace moescope::engine {
namespace {

using Value = EnvValue<CudaKernelOptions>;
using Variable = EnvVariable<CudaKernelOptions>;

constexpr std::array kAttention{
    Value{"cudnn", "bf16: cuDNN's fused attention where it takes the shape, else as flash",
          [](CudaKernelOptions& o) { o.attention = AttentionKernel::Cudnn; }},
    Value{"flash", "bf16: the engine's fused kernels (head size 64, 128), else as cublas",
          [](CudaKernelOptions& o) { o.attention = AttentionKernel::Flash; }},
    Value{"cublas", "cuBLASLt products, the T x T probabilities kept",
          [](CudaKernelOptions& o) { o.attention = AttentionKernel::Cublas; }},
};
constexpr std::array kGelu{
    Value{"1", "bf16: the FFN's GELU in the first product's epilogue (GELU_AUX_BIAS)",
          [](CudaKernelOptions& o) { o.gelu_epilogue = true; }},
    Value{"0", "GELU as a kernel of its own", [](CudaKernelOptions& o) { o.gelu_epilogue = false; }},
};
// On an H200 (samples/bench-h200.toml's fc layer, bf16, docs/bench-gpu-perf.md, 2026-12-03): the product
// with the DGELU epilogue alone 0.79 ms, the product then GELU' in place 0.93 ms, DGELU_BGRAD 1.87 ms (its
// bias gradient is what costs); the dense step 1.1% faster with DGELU than with the separate kernel.
constexpr std::array kDgelu{
    Value{"dgelu", "bf16: GELU' in the second product's epilogue (DGELU), the fc bias gradient apart",
          [](CudaKernelOptions& o) { o.dgelu_epilogue = DgeluEpilogue::Alone; }},
    Value{"0", "GELU' as a kernel of its own, in place",
          [](CudaKernelOptions& o) { o.dgelu_epilogue = DgeluEpilogue::Off; }},
    Value{"1", "bf16: GELU' and the fc bias gradient in the second product's epilogue (DGELU_BGRAD)",
          [](CudaKernelOptions& o) { o.dgelu_epilogue = DgeluEpilogue::WithBias; }},
};
// The column-sum kernel (16-byte accesses) against cuBLASLt's BGRADB, whose reduction runs as a kernel of
// its own after the product anyway (globalKernelBgradAB, 64 us each): the dense bench step 0.4% faster
// with the kernel, 0.8% with it and the DGELU epilogue together (two rounds, 2026-12-03).
constexpr std::array kBias{
    Value{"0", "a bias-gradient kernel per layer (column sums, 16-byte accesses)",
          [](CudaKernelOptions& o) { o.bias_epilogue = false; }},
    Value{"1", "bias gradients from the weight-gradient product (BGRADB)",
          [](CudaKernelOptions& o) { o.bias_epilogue = true; }},
};
constexpr std::array kResidualNorm{
    Value{"1", "residual add and the LayerNorm after it in one kernel",
          [](CudaKernelOptions& o) { o.residual_norm = true; }},
    Value{"0", "residual add and LayerNorm as two kernels",
          [](CudaKernelOptions& o) { o.residual_norm = false; }},
};
constexpr std::array kAdamw{
    Value{"one", "AdamW over every tensor in one launch",
          [](CudaKernelOptions& o) { o.adamw_one_launch = true; }},
    Value{"runs", "AdamW a launch per run of tensors",
          [](CudaKernelOptions& o) { o.adamw_one_launch = false; }},
};
constexpr std::array kExperts{
    Value{"loop", "a rank's experts a cuBLASLt product each",
          [](CudaKernelOptions& o) { o.grouped_experts = false; }},
    Value{"grouped", "a rank's experts in one cuBLAS grouped GEMM per product",
          [](CudaKernelOptions& o) { o.grouped_experts = true; }},
};
// Recomputing trades a GELU kernel a layer and backward (0.15 ms at the bench model's 16384 x 8192) for
// the N x d_ff activation each layer and micro-batch would keep (268 MB there: 2.1 GB over 8 layers), as
// torch.compile's partitioner and Megatron's selective recomputation do.
constexpr std::array kGeluOutput{
    Value{"keep", "the dense FFN's GELU output kept from the forward for the backward",
          [](CudaKernelOptions& o) { o.keep_gelu_output = true; }},
    Value{"recompute",
          "recomputed from the kept pre-activation in the backward (less memory, one kernel more)",
          [](CudaKernelOptions& o) { o.keep_gelu_output = false; }},
};
constexpr std::array kVariables{
    Variable{"MOESCOPE_CUDA_ATTENTION", kAttention},
    Variable{"MOESCOPE_CUDA_GELU_EPILOGUE", kGelu},
    Variable{"MOESCOPE_CUDA_DGELU_EPILOGUE", kDgelu},
    Variable{"MOESCOPE_CUDA_BIAS_EPILOGUE", kBias},
    Variable{"MOESCOPE_CUDA_RESIDUAL_NORM", kResidualNorm},
    Variable{"MOESCOPE_CUDA_ADAMW", kAdamw},
    Variable{"MOESCOPE_CUDA_EXPERTS", kExperts},
    Variable{"MOESCOPE_CUDA_GELU_OUTPUT", kGeluOutput},
};

}  // namespace

const char* attentionKernelName(AttentionKernel kernel) {
  switch (kernel) {
    case AttentionKernel::Flash:
      return "flash";
    case AttentionKernel::Cublas:
      return "cublas";
    case AttentionKernel::Cudnn:
      break;
  }
  return "cudnn";
}

CudaKernelOptions unfusedKernelOptions() {
  CudaKernelOptions o;
  o.attention = AttentionKernel::Flash;  // the engine's own fused attention, as before cuDNN's
  o.gelu_epilogue = o.bias_epilogue = o.residual_norm = o.adamw_one_launch = o.grouped_experts = false;
  o.dgelu_epilogue = DgeluEpilogue::Off;
  return o;
}

std::span<const EnvVariable<CudaKernelOptions>> cudaKernelVariables() {
  return kVariables;
}

CudaKernelOptions readCudaKernelOptions(const std::function<const char*(const char*)>& getenv) {
  return readEnvSwitches<CudaKernelOptions>(kVariables, getenv);
}

CudaKernelOptions readCudaKernelOptions() {
  return readCudaKernelOptions([](const char* name) { return std::getenv(name); });
}

std::string cudaKernelOptionsHelp() {
  return envSwitchesHelp<CudaKernelOptions>(kVariables);
}

std::string cudaKernelOptionsText(const CudaKernelOptions& options) {
  return envSwitchesOf<CudaKernelOptions>(kVariables, options);
}

}  // namespace moescope::engine
