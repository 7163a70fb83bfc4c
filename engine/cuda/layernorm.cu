#include <algorithm>

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

// dx += the input gradient, one warp per row. Vec: the row in vectors of eight (C a multiple of 8).
template <typename T, bool Vec>
__global__ void layerNormBackwardKernel(T* dx, const T* dout, const T* x, const T* weight, const float* mean,
                                        const float* rstd, int n, int C) {
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= n) return;  // the whole warp leaves together
  const T* xr = x + static_cast<size_t>(row) * C;
  const T* dr = dout + static_cast<size_t>(row) * C;
  T* dxr = dx + static_cast<size_t>(row) * C;
  const float mu = mean[row];
  const float s = rstd[row];
  float dnormSum = 0.0f;
  float dnormNormSum = 0.0f;
  if constexpr (Vec) {
    for (int c = 8 * lane; c < C; c += 8 * 32) {
      float xv[8], dv[8], wv[8];
      load8(xv, xr + c);
      load8(dv, dr + c);
      load8(wv, weight + c);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const float dnorm = wv[k] * dv[k];
        dnormSum += dnorm;
        dnormNormSum += dnorm * (xv[k] - mu) * s;
      }
    }
  } else {
    for (int c = lane; c < C; c += 32) {
      const float dnorm = toFloat(weight[c]) * toFloat(dr[c]);
      dnormSum += dnorm;
      dnormNormSum += dnorm * (toFloat(xr[c]) - mu) * s;
    }
  }
  const float a = warpSum(dnormSum) / C;
  const float b = warpSum(dnormNormSum) / C;
  if constexpr (Vec) {
    for (int c = 8 * lane; c < C; c += 8 * 32) {
      float xv[8], dv[8], wv[8], out[8];
      load8(xv, xr + c);
      load8(dv, dr + c);
      load8(wv, weight + c);
      load8(out, dxr + c);
#pragma unroll
      for (int k = 0; k < 8; ++k) out[k] += (wv[k] * dv[k] - a - (xv[k] - mu) * s * b) * s;
      store8(dxr + c, out);
    }
  } else {
    for (int c = lane; c < C; c += 32) {
      const float norm = (toFloat(xr[c]) - mu) * s;
      const float dnorm = toFloat(weight[c]) * toFloat(dr[c]);
      dxr[c] = fromFloat<T>(toFloat(dxr[c]) + (dnorm - a - norm * b) * s);
    }
  }
}

// The parameter gradients, by columns: a block takes 32 columns (one a lane) of a part of the rows, its 8
// warps summing every 8th row of the part in registers; the warps' sums meet in shared memory and the
// block adds them to the global ones with one atomic a column.
constexpr int kParamRowsPerStep = 8;

template <typename T>
__global__ void layerNormParamGradKernel(float* dweight, float* dbias, const T* dout, const T* x,
                                         const float* mean, const float* rstd, int n, int C,
                                         int rowsPerPart) {
  __shared__ float sw[kParamRowsPerStep][33], sb[kParamRowsPerStep][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * 32 + tx;
  const int r0 = blockIdx.y * rowsPerPart;
  const int r1 = min(n, r0 + rowsPerPart);
  float dw = 0.0f, db = 0.0f;
  if (c < C) {
    for (int r = r0 + ty; r < r1; r += kParamRowsPerStep) {
      const size_t i = static_cast<size_t>(r) * C + c;
      const float d = toFloat(dout[i]);
      dw += (toFloat(x[i]) - mean[r]) * rstd[r] * d;
      db += d;
    }
  }
  sw[ty][tx] = dw;
  sb[ty][tx] = db;
  __syncthreads();
  if (ty != 0 || c >= C) return;
  for (int k = 1; k < kParamRowsPerStep; ++k) {
    dw += sw[k][tx];
    db += sb[k][tx];
  }
  if (dweight) atomicAdd(&dweight[c], dw);
  if (dbias) atomicAdd(&dbias[c], db);
}

// The same parameter gradients in 16-byte accesses (C a multiple of 8, dout and x aligned): a lane takes
// eight adjacent columns, a warp 256, the block's 8 warps every 8th row of its part. The kernel above reads
// 2 bytes a lane and took 0.068 ms at 16384 x 2048 (2 TB/s over dout and x).
constexpr int kParamVecCols = 8 * 32;

template <typename T>
__global__ void layerNormParamGradVecKernel(float* dweight, float* dbias, const T* dout, const T* x,
                                            const float* mean, const float* rstd, int n, int C,
                                            int rowsPerPart) {
  __shared__ float sw[kParamRowsPerStep][kParamVecCols], sb[kParamRowsPerStep][kParamVecCols];
  const int c0 = blockIdx.x * kParamVecCols + 8 * threadIdx.x;
  const int r0 = blockIdx.y * rowsPerPart;
  const int r1 = min(n, r0 + rowsPerPart);
  float dw[8] = {}, db[8] = {};
  if (c0 < C) {
#pragma unroll 2
    for (int r = r0 + threadIdx.y; r < r1; r += kParamRowsPerStep) {
      const size_t i = static_cast<size_t>(r) * C + c0;
      float d[8], xv[8];
      load8(d, dout + i);
      load8(xv, x + i);
      const float mu = mean[r], s = rstd[r];
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        dw[k] += (xv[k] - mu) * s * d[k];
        db[k] += d[k];
      }
    }
  }
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    sw[threadIdx.y][8 * threadIdx.x + k] = dw[k];
    sb[threadIdx.y][8 * threadIdx.x + k] = db[k];
  }
  __syncthreads();
  // Thread (x, y) adds up column 32·y + x of the block's 256 over the 8 warps' rows.
  const int c = threadIdx.y * 32 + threadIdx.x;
  if (blockIdx.x * kParamVecCols + c >= C) return;
  float w = 0.0f, b = 0.0f;
#pragma unroll
  for (int k = 0; k < kParamRowsPerStep; ++k) {
    w += sw[k][c];
    b += sb[k][c];
  }
  if (dweight) atomicAdd(&dweight[blockIdx.x * kParamVecCols + c], w);
  if (dbias) atomicAdd(&dbias[blockIdx.x * kParamVecCols + c], b);
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
  MOESCOPE_CUDA_REQUIRE("layerNormBackward", dout && x && mean && rstd && (!dx || weight));
  if (!dx) {
    // A split backward's weight pass: the parameter gradients alone.
  } else if (C % 8 == 0 && vectorizable(dx) && vectorizable(dout) && vectorizable(x) &&
             vectorizable(weight)) {
    layerNormBackwardKernel<T, true>
        <<<ceilDiv(n, kWarps), kThreads, 0, stream>>>(dx, dout, x, weight, mean, rstd, n, C);
    MOESCOPE_CUDA_CHECK_LAUNCH();
  } else {
    layerNormBackwardKernel<T, false>
        <<<ceilDiv(n, kWarps), kThreads, 0, stream>>>(dx, dout, x, weight, mean, rstd, n, C);
    MOESCOPE_CUDA_CHECK_LAUNCH();
  }
  if (dweight == nullptr && dbias == nullptr) return;
  const dim3 block(32, kParamRowsPerStep);
  if (C % 8 == 0 && vectorizable(dout) && vectorizable(x)) {
    const ColumnStrips g = columnStrips(n, C, kParamVecCols, kParamRowsPerStep);
    layerNormParamGradVecKernel<T><<<dim3(g.columnBlocks, g.parts), block, 0, stream>>>(
        dweight, dbias, dout, x, mean, rstd, n, C, g.rowsPerPart);
  } else {
    const ColumnStrips g = columnStrips(n, C, 32, kParamRowsPerStep);
    layerNormParamGradKernel<T><<<dim3(g.columnBlocks, g.parts), block, 0, stream>>>(
        dweight, dbias, dout, x, mean, rstd, n, C, g.rowsPerPart);
  }
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
