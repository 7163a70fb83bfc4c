#include "engine/cuda/kernel_choice.h"

#include "engine/cuda/cudnn_attention.h"
#include "engine/cuda/flash_attention.h"

namespace moescope::engine::cuda {

namespace {

bool bf16(const Config& c) {
  return c.train.precision == Precision::Bf16;
}

bool cudnnTakes(const Config& c) {
  return cudnnAttentionSupports(static_cast<int>(c.model.seq_len), static_cast<int>(c.model.headSize()));
}

}  // namespace

AttentionKernel attentionKernel(const Config& c, const CudaKernelOptions& o) {
  if (!bf16(c) || o.attention == AttentionKernel::Cublas) return AttentionKernel::Cublas;
  if (o.attention == AttentionKernel::Cudnn && cudnnTakes(c) && cudnnAttentionAvailable())
    return AttentionKernel::Cudnn;
  if (flashAttentionSupports(static_cast<int>(c.model.headSize())) && flashAttentionAvailable())
    return AttentionKernel::Flash;
  return AttentionKernel::Cublas;
}

CudaKernelOptions effectiveKernelOptions(const Config& c, const CudaKernelOptions& o) {
  CudaKernelOptions e = o;
  e.attention = attentionKernel(c, o);
  e.gelu_epilogue = o.gelu_epilogue && bf16(c);
  e.dgelu_epilogue = bf16(c) ? o.dgelu_epilogue : DgeluEpilogue::Off;
  return e;
}

std::string describeKernels(const Config& c, const CudaKernelOptions& o) {
  const CudaKernelOptions e = effectiveKernelOptions(c, o);
  std::string why;
  if (e.attention != o.attention) {
    if (!bf16(c))
      why = "fp32";
    else if (o.attention == AttentionKernel::Cudnn && !cudnnTakes(c))
      why = "cuDNN: sequence " + std::to_string(c.model.seq_len) + ", head size " +
            std::to_string(c.model.headSize());
    else if (o.attention == AttentionKernel::Cudnn && !cudnnAttentionAvailable())
      why = "cuDNN: " + cudnnAttentionUnavailableReason();
    else
      why = "fused kernels: head size " + std::to_string(c.model.headSize()) + " or no device for them";
    why = " (attention: " + std::string(attentionKernelName(o.attention)) + " asked; " + why + ")";
  }
  return cudaKernelOptionsText(e) + why;
}

}  // namespace moescope::engine::cuda
