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

// One element: p, m, v updated from the gradient g. Every operation is an explicitly rounded intrinsic:
// nvcc contracts a * b + c into one FMA (one rounding instead of two) where it sees fit, and inlined into
// the two kernels it chose differently, so the multi-tensor step differed from the per-tensor one in the
// last bit; the _rn intrinsics are never contracted.
__device__ __forceinline__ void adamwUpdateValue(float& p, float& m, float& v, float grad,
                                                 const AdamWScalars& s, float scale) {
  const float g = __fmul_rn(grad, scale);
  m = __fadd_rn(m, __fmul_rn(s.w1, __fsub_rn(g, m)));
  v = __fadd_rn(__fmul_rn(v, s.beta2), __fmul_rn(__fmul_rn(s.w2, g), g));
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), s.bc2Sqrt), s.eps);
  p = __fsub_rn(__fmul_rn(p, s.decay), __fdiv_rn(__fmul_rn(s.stepSize, m), denom));
}

// Element i: param, m, v updated; paramBf16 (optional) the new parameter rounded to bf16.
__device__ __forceinline__ void adamwUpdate(float* param, __nv_bfloat16* paramBf16, const float* grad,
                                            float* m, float* v, size_t i, const AdamWScalars& s,
                                            float scale) {
  float p = param[i], mi = m[i], vi = v[i];
  adamwUpdateValue(p, mi, vi, grad[i], s, scale);
  m[i] = mi;
  v[i] = vi;
  param[i] = p;
  if (paramBf16) paramBf16[i] = __float2bfloat16(p);
}

// Elements i..i+3 in 16-byte accesses (8 bytes for the bf16 copy): the same arithmetic as adamwUpdate,
// element by element. param, grad, m, v must be 16-byte aligned at i, paramBf16 8-byte aligned.
__device__ __forceinline__ void adamwUpdate4(float* param, __nv_bfloat16* paramBf16, const float* grad,
                                             float* m, float* v, size_t i, const AdamWScalars& s,
                                             float scale) {
  float4 p = *reinterpret_cast<const float4*>(param + i);
  float4 mi = *reinterpret_cast<const float4*>(m + i);
  float4 vi = *reinterpret_cast<const float4*>(v + i);
  const float4 g = *reinterpret_cast<const float4*>(grad + i);
  adamwUpdateValue(p.x, mi.x, vi.x, g.x, s, scale);
  adamwUpdateValue(p.y, mi.y, vi.y, g.y, s, scale);
  adamwUpdateValue(p.z, mi.z, vi.z, g.z, s, scale);
  adamwUpdateValue(p.w, mi.w, vi.w, g.w, s, scale);
  *reinterpret_cast<float4*>(m + i) = mi;
  *reinterpret_cast<float4*>(v + i) = vi;
  *reinterpret_cast<float4*>(param + i) = p;
  if (paramBf16) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(p.x, p.y), hi = __floats2bfloat162_rn(p.z, p.w);
    uint2 packed;
    packed.x = *reinterpret_cast<const unsigned*>(&lo);
    packed.y = *reinterpret_cast<const unsigned*>(&hi);
    *reinterpret_cast<uint2*>(paramBf16 + i) = packed;
  }
}

}  // namespace moescope::engine::cuda
