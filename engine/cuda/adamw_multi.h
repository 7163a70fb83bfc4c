// AdamW over many tensors in one launch (multi-tensor apply): the stage's parameters are a few hundred
// tensors, some tiny (biases, LayerNorms), and a launch per run of them cost launch gaps that added up to
// about as much as the small tensors' work. Bit for bit the arithmetic of adamwStep (adamw_update.cuh);
// CPU reference: engine/cpu/ops.h adamwStep.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "engine/cpu/ops.h"  // AdamWParams

namespace moescope::engine::cuda {

using cpu::AdamWParams;

// One tensor: fp32 param, grad, m, v of n elements; paramBf16 (optional) receives the updated parameters
// rounded to bf16; decay: whether the weight decay applies (matrices) or not (biases, LayerNorms).
struct AdamWTensor {
  float* param = nullptr;
  __nv_bfloat16* paramBf16 = nullptr;
  const float* grad = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  size_t n = 0;
  bool decay = false;
};

// The tensors' table on the current device, made once (the pointers must stay valid); each step is then
// one launch of blocks over fixed-size chunks of every tensor.
class AdamWMultiTensor {
 public:
  explicit AdamWMultiTensor(const std::vector<AdamWTensor>& tensors);
  ~AdamWMultiTensor();
  AdamWMultiTensor(const AdamWMultiTensor&) = delete;
  AdamWMultiTensor& operator=(const AdamWMultiTensor&) = delete;

  // Update number `step` (1, 2, ...) of every tensor: hp.weightDecay for those with decay, none for the
  // others; gradScale as adamwStep takes it (a device scalar, or nullptr for 1).
  void step(const AdamWParams& hp, int step, const float* gradScale, cudaStream_t stream) const;

  size_t tensors() const { return count_; }
  size_t elements() const { return elements_; }

 private:
  void* table_ = nullptr;
  size_t count_ = 0, chunks_ = 0, elements_ = 0;
};

}  // namespace moescope::engine::cuda
