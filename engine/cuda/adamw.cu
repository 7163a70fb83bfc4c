#include "engine/cuda/adamw.h"
#include "engine/cuda/adamw_update.cuh"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void adamwKernel(float* param, __nv_bfloat16* paramBf16, const float* grad, float* m, float* v,
                            size_t n, AdamWScalars s, const float* gradScale) {
  const float scale = gradScale ? *gradScale : 1.0f;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    adamwUpdate(param, paramBf16, grad, m, v, i, s, scale);
  }
}

}  // namespace

void adamwStep(float* param, __nv_bfloat16* paramBf16, const float* grad, float* m, float* v, size_t n,
               const AdamWParams& hp, int step, const float* gradScale, cudaStream_t stream) {
  NvtxRange range("adamwStep");
  MOESCOPE_CUDA_REQUIRE("adamwStep", step >= 1);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("adamwStep", param != nullptr && grad != nullptr && m != nullptr && v != nullptr);
  const AdamWScalars s = adamwScalars(hp, step);
  adamwKernel<<<gridStrideBlocks(n, kThreads), kThreads, 0, stream>>>(param, paramBf16, grad, m, v, n, s,
                                                                      gradScale);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace moescope::engine::cuda
