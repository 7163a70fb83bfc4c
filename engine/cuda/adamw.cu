#include <cmath>

#include "engine/cuda/adamw.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;

struct AdamWScalars {
  float decay;  // 1 − lr·wd
  float w1;     // 1 − β1
  float beta2;
  float w2;        // 1 − β2
  float stepSize;  // lr / (1 − β1^step)
  float bc2Sqrt;   // sqrt(1 − β2^step)
  float eps;
};

__global__ void adamwKernel(float* param, __nv_bfloat16* paramBf16, const float* grad, float* m, float* v,
                            size_t n, AdamWScalars s, const float* gradScale) {
  const float scale = gradScale ? *gradScale : 1.0f;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    const float g = grad[i] * scale;
    float p = param[i] * s.decay;
    float mi = m[i];
    mi += s.w1 * (g - mi);
    const float vi = v[i] * s.beta2 + s.w2 * g * g;
    const float denom = sqrtf(vi) / s.bc2Sqrt + s.eps;
    p -= s.stepSize * mi / denom;
    m[i] = mi;
    v[i] = vi;
    param[i] = p;
    if (paramBf16) paramBf16[i] = __float2bfloat16(p);
  }
}

}  // namespace

void adamwStep(float* param, __nv_bfloat16* paramBf16, const float* grad, float* m, float* v, size_t n,
               const AdamWParams& hp, int step, const float* gradScale, cudaStream_t stream) {
  NvtxRange range("adamwStep");
  MOESCOPE_CUDA_REQUIRE("adamwStep", step >= 1);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("adamwStep", param != nullptr && grad != nullptr && m != nullptr && v != nullptr);
  AdamWScalars s;
  s.decay = static_cast<float>(1.0 - hp.lr * hp.weightDecay);
  s.w1 = static_cast<float>(1.0 - hp.beta1);
  s.beta2 = static_cast<float>(hp.beta2);
  s.w2 = static_cast<float>(1.0 - hp.beta2);
  s.stepSize = static_cast<float>(hp.lr / (1.0 - std::pow(hp.beta1, step)));
  s.bc2Sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(hp.beta2, step)));
  s.eps = static_cast<float>(hp.eps);
  adamwKernel<<<gridStrideBlocks(n, kThreads), kThreads, 0, stream>>>(param, paramBf16, grad, m, v, n, s,
                                                                      gradScale);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace moescope::engine::cuda
