#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/layernorm_residual.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;  // 8 warps, one row each
constexpr int kWarps = kThreads / 32;
constexpr float kEps = 1e-5f;
// Rows held in registers: NV vectors of 8 a lane, so C <= 32 · 8 · kMaxVecs (4096) in one pass; wider rows
// (or unaligned ones) take the element-by-element kernel, which reads r back.
constexpr int kMaxVecs = 16;

// The sum of the rounded residual, (x + z) + bias in float then rounded to T as residualAdd does.
template <typename T>
__device__ __forceinline__ float residual(float x, float z, float b) {
  return toFloat(fromFloat<T>(x + z + b));
}

// One warp per row; lane l holds the vectors l, l + 32, ... of the row (NV of them at most).
template <typename T, int NV>
__global__ void residualLayerNormVecKernel(T* r, T* out, float* mean, float* rstd, const T* x, const T* z,
                                           const T* bias, const T* weight, const T* lnBias, int n, int C) {
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= n) return;  // the whole warp leaves together
  const size_t base = static_cast<size_t>(row) * C;
  const int vecs = C / 8;
  float v[NV][8];
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int c = 8 * (lane + 32 * j);
    if (lane + 32 * j < vecs) {
      float a[8], b[8], s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      load8(a, x + base + c);
      load8(b, z + base + c);
      if (bias) load8(s, bias + c);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        v[j][k] = residual<T>(a[k], b[k], s[k]);
        sum += v[j][k];
      }
      store8(r + base + c, v[j]);
    }
  }
  const float mu = warpSum(sum) / C;
  float var = 0.0f;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    if (lane + 32 * j < vecs) {
#pragma unroll
      for (int k = 0; k < 8; ++k) var += (v[j][k] - mu) * (v[j][k] - mu);
    }
  }
  const float s = rsqrtf(warpSum(var) / C + kEps);
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int c = 8 * (lane + 32 * j);
    if (lane + 32 * j < vecs) {
      float w[8], b[8], o[8];
      load8(w, weight + c);
      load8(b, lnBias + c);
#pragma unroll
      for (int k = 0; k < 8; ++k) o[k] = (v[j][k] - mu) * s * w[k] + b[k];
      store8(out + base + c, o);
    }
  }
  if (lane == 0) {
    mean[row] = mu;
    rstd[row] = s;
  }
}

// Any C and alignment: element by element, r written and then read back by the lane that wrote it.
template <typename T>
__global__ void residualLayerNormKernel(T* r, T* out, float* mean, float* rstd, const T* x, const T* z,
                                        const T* bias, const T* weight, const T* lnBias, int n, int C) {
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= n) return;
  const size_t base = static_cast<size_t>(row) * C;
  float sum = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float v = residual<T>(toFloat(x[base + c]), toFloat(z[base + c]), bias ? toFloat(bias[c]) : 0.0f);
    r[base + c] = fromFloat<T>(v);
    sum += v;
  }
  const float mu = warpSum(sum) / C;
  float var = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float d = toFloat(r[base + c]) - mu;
    var += d * d;
  }
  const float s = rsqrtf(warpSum(var) / C + kEps);
  for (int c = lane; c < C; c += 32) {
    out[base + c] = fromFloat<T>((toFloat(r[base + c]) - mu) * s * toFloat(weight[c]) + toFloat(lnBias[c]));
  }
  if (lane == 0) {
    mean[row] = mu;
    rstd[row] = s;
  }
}

template <typename T, int NV>
void launchVec(unsigned blocks, cudaStream_t stream, T* r, T* out, float* mean, float* rstd, const T* x,
               const T* z, const T* bias, const T* weight, const T* lnBias, int n, int C) {
  residualLayerNormVecKernel<T, NV>
      <<<blocks, kThreads, 0, stream>>>(r, out, mean, rstd, x, z, bias, weight, lnBias, n, C);
}

}  // namespace

template <typename T>
void residualLayerNormForward(T* r, T* out, float* mean, float* rstd, const T* x, const T* z, const T* bias,
                              const T* weight, const T* lnBias, int n, int C, cudaStream_t stream) {
  NvtxRange range("residualLayerNormForward");
  MOESCOPE_CUDA_REQUIRE("residualLayerNormForward", n >= 0 && C > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("residualLayerNormForward", r && out && mean && rstd && x && z && weight && lnBias);
  MOESCOPE_CUDA_REQUIRE("residualLayerNormForward", out != r && out != x && out != z);
  const unsigned blocks = ceilDiv(n, kWarps);
  const int nv = (C / 8 + 31) / 32;  // vectors a lane holds
  const bool vec = C % 8 == 0 && nv <= kMaxVecs && vectorizable(r) && vectorizable(out) && vectorizable(x) &&
                   vectorizable(z) && vectorizable(bias) && vectorizable(weight) && vectorizable(lnBias);
  if (!vec) {
    residualLayerNormKernel<T>
        <<<blocks, kThreads, 0, stream>>>(r, out, mean, rstd, x, z, bias, weight, lnBias, n, C);
  } else if (nv <= 1) {
    launchVec<T, 1>(blocks, stream, r, out, mean, rstd, x, z, bias, weight, lnBias, n, C);
  } else if (nv <= 2) {
    launchVec<T, 2>(blocks, stream, r, out, mean, rstd, x, z, bias, weight, lnBias, n, C);
  } else if (nv <= 4) {
    launchVec<T, 4>(blocks, stream, r, out, mean, rstd, x, z, bias, weight, lnBias, n, C);
  } else if (nv <= 8) {
    launchVec<T, 8>(blocks, stream, r, out, mean, rstd, x, z, bias, weight, lnBias, n, C);
  } else if (nv <= 12) {
    launchVec<T, 12>(blocks, stream, r, out, mean, rstd, x, z, bias, weight, lnBias, n, C);
  } else {
    launchVec<T, kMaxVecs>(blocks, stream, r, out, mean, rstd, x, z, bias, weight, lnBias, n, C);
  }
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template void residualLayerNormForward<float>(float*, float*, float*, float*, const float*, const float*,
                                              const float*, const float*, const float*, int, int,
                                              cudaStream_t);
template void residualLayerNormForward<__nv_bfloat16>(__nv_bfloat16*, __nv_bfloat16*, float*, float*,
                                                      const __nv_bfloat16*, const __nv_bfloat16*,
                                                      const __nv_bfloat16*, const __nv_bfloat16*,
                                                      const __nv_bfloat16*, int, int, cudaStream_t);

}  // namespace moescope::engine::cuda
