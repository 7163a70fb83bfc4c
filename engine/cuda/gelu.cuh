// GELU with the tanh approximation and its derivative, in float (MODEL.md; CPU reference:
// engine/cpu/ops.h geluForward, geluBackward). Included by .cu files only.
#pragma once

namespace moescope::engine::cuda {

inline constexpr float kSqrt2OverPi = 0.7978845608028654f;
inline constexpr float kGeluCoef = 0.044715f;

__device__ __forceinline__ float gelu(float v) {
  const float u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
  return 0.5f * v * (1.0f + tanhf(u));
}

__device__ __forceinline__ float geluGrad(float v) {
  const float u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
  const float th = tanhf(u);
  return 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCoef * v * v);
}

}  // namespace moescope::engine::cuda
