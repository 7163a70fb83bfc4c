// The AdamW update of one element, shared by the single-tensor and the multi-tensor launchers so both
// compute bit for bit the same (CPU reference: engine/cpu/ops.h adamwStep). Included by .cu files only.
#pragma once

#include <cuda_bf16.h>

#include <cmath>

#include "engine/cpu/ops.h"  // AdamWParams

namespace moescope::engine::cuda {

struct AdamWScalars {
  float decay;  // 1 − lr·wd
  float w1;     // 1 − β1
  float beta2;
  float w2;        // 1 − β2
  float stepSize;  // lr / (1 − β1^step)
  float bc2Sqrt;   // sqrt(1 − β2^step)
  float eps;
};

// The scalars of update number `step` (1, 2, ...), in double then rounded, as the CPU reference has them.
inline AdamWScalars adamwScalars(const cpu::AdamWParams& hp, int step) {
  AdamWScalars s;
  s.decay = static_cast<float>(1.0 - hp.lr * hp.weightDecay);
  s.w1 = static_cast<float>(1.0 - hp.beta1);
  s.beta2 = static_cast<float>(hp.beta2);
  s.w2 = static_cast<float>(1.0 - hp.beta2);
  s.stepSize = static_cast<float>(hp.lr / (1.0 - std::pow(hp.beta1, step)));
  s.bc2Sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(hp.beta2, step)));
  s.eps = static_cast<float>(hp.eps);
  return s;
}

// Element i: param, m, v updated; paramBf16 (optional) the new parameter rounded to bf16.
__device__ __forceinline__ void adamwUpdate(float* param, __nv_bfloat16* paramBf16, const float* grad,
                                            float* m, float* v, size_t i, const AdamWScalars& s,
                                            float scale) {
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

}  // namespace moescope::engine::cuda
