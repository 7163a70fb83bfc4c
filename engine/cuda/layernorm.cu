#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/launch_config.h"
#include "engine/cuda/layernorm.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;  // 8 warps, one row each
constexpr int kWarps = kThreads / 32;
constexpr float kEps = 1e-5f;

template <typename T>
__global__ void layerNormForwardKernel(T* out, float* mean, float* rstd, const T* x, const T* weight,
                                       const T* bias, int n, int C) {
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= n) return;  // the whole warp leaves together
  const T* xr = x + static_cast<size_t>(row) * C;
  float sum = 0.0f;
  for (int c = lane; c < C; c += 32) sum += toFloat(xr[c]);
  const float mu = warpSum(sum) / C;
  float var = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float d = toFloat(xr[c]) - mu;
    var += d * d;
  }
  const float s = rsqrtf(warpSum(var) / C + kEps);
  T* o = out + static_cast<size_t>(row) * C;
  for (int c = lane; c < C; c += 32) {
    o[c] = fromFloat<T>((toFloat(xr[c]) - mu) * s * toFloat(weight[c]) + toFloat(bias[c]));
  }
  if (lane == 0) {
    mean[row] = mu;
    rstd[row] = s;
  }
}

// Grid-stride over rows, one warp per row; the block sums its rows' parameter gradients in shared
// memory (2·C floats) and adds them to the global ones once.
template <typename T>
__global__ void layerNormBackwardKernel(T* dx, float* dweight, float* dbias, const T* dout, const T* x,
                                        const T* weight, const float* mean, const float* rstd, int n, int C) {
  extern __shared__ float shared[];
  float* sdw = shared;
  float* sdb = shared + C;
  const bool paramGrads = dweight != nullptr || dbias != nullptr;
  if (paramGrads) {
    for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) shared[c] = 0.0f;
  }
  __syncthreads();
  const int lane = threadIdx.x % 32;
  for (int row = blockIdx.x * kWarps + threadIdx.x / 32; row < n; row += gridDim.x * kWarps) {
    const T* xr = x + static_cast<size_t>(row) * C;
    const T* dr = dout + static_cast<size_t>(row) * C;
    T* dxr = dx + static_cast<size_t>(row) * C;
    const float mu = mean[row];
    const float s = rstd[row];
    float dnormSum = 0.0f;
    float dnormNormSum = 0.0f;
    for (int c = lane; c < C; c += 32) {
      const float norm = (toFloat(xr[c]) - mu) * s;
      const float dnorm = toFloat(weight[c]) * toFloat(dr[c]);
      dnormSum += dnorm;
      dnormNormSum += dnorm * norm;
    }
    const float a = warpSum(dnormSum) / C;
    const float b = warpSum(dnormNormSum) / C;
    for (int c = lane; c < C; c += 32) {
      const float d = toFloat(dr[c]);
      const float norm = (toFloat(xr[c]) - mu) * s;
      const float dnorm = toFloat(weight[c]) * d;
      dxr[c] = fromFloat<T>(toFloat(dxr[c]) + (dnorm - a - norm * b) * s);
      if (paramGrads) {
        atomicAdd(&sdw[c], norm * d);
        atomicAdd(&sdb[c], d);
      }
    }
  }
  if (!paramGrads) return;
  __syncthreads();
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    if (dweight) atomicAdd(&dweight[c], sdw[c]);
    if (dbias) atomicAdd(&dbias[c], sdb[c]);
  }
}

}  // namespace

template <typename T>
void layerNormForward(T* out, float* mean, float* rstd, const T* x, const T* weight, const T* bias, int n,
                      int C, cudaStream_t stream) {
  NvtxRange range("layerNormForward");
  MOESCOPE_CUDA_REQUIRE("layerNormForward", n >= 0 && C > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("layerNormForward", out && mean && rstd && x && weight && bias);
  layerNormForwardKernel<T>
      <<<ceilDiv(n, kWarps), kThreads, 0, stream>>>(out, mean, rstd, x, weight, bias, n, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void layerNormBackward(T* dx, float* dweight, float* dbias, const T* dout, const T* x, const T* weight,
                       const float* mean, const float* rstd, int n, int C, cudaStream_t stream) {
  NvtxRange range("layerNormBackward");
  MOESCOPE_CUDA_REQUIRE("layerNormBackward", n >= 0 && C > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("layerNormBackward", dx && dout && x && weight && mean && rstd);
  const size_t smem = 2 * static_cast<size_t>(C) * sizeof(float);
  MOESCOPE_CUDA_REQUIRE("layerNormBackward",
                        smem <= static_cast<size_t>(maxSharedMemoryPerBlockOptin()));  // C up to ~29k on H100
  if (smem > 48 * 1024) {
    MOESCOPE_CUDA_CHECK(cudaFuncSetAttribute(
        layerNormBackwardKernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
  // enough blocks to fill the device twice over; each block then flushes its parameter sums once
  const unsigned maxBlocks = static_cast<unsigned>(2 * multiprocessorCount());
  const unsigned blocks = ceilDiv(n, kWarps) < maxBlocks ? ceilDiv(n, kWarps) : maxBlocks;
  layerNormBackwardKernel<T>
      <<<blocks, kThreads, smem, stream>>>(dx, dweight, dbias, dout, x, weight, mean, rstd, n, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template void layerNormForward<float>(float*, float*, float*, const float*, const float*, const float*, int,
                                      int, cudaStream_t);
template void layerNormForward<__nv_bfloat16>(__nv_bfloat16*, float*, float*, const __nv_bfloat16*,
                                              const __nv_bfloat16*, const __nv_bfloat16*, int, int,
                                              cudaStream_t);
template void layerNormBackward<float>(float*, float*, float*, const float*, const float*, const float*,
                                       const float*, const float*, int, int, cudaStream_t);
template void layerNormBackward<__nv_bfloat16>(__nv_bfloat16*, float*, float*, const __nv_bfloat16*,
                                               const __nv_bfloat16*, const __nv_bfloat16*, const float*,
                                               const float*, int, int, cudaStream_t);

}  // namespace moescope::engine::cuda
