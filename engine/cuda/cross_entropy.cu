#include <algorithm>
#include <type_traits>

#include "engine/cuda/cross_entropy.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 512;  // one block per row

// max and Σ exp(l − max) of one row, known to every thread of the block
template <typename T>
__device__ void rowStats(const T* l, int V, float* scratch, float& maxv, float& sum) {
  float m = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, toFloat(l[v]));
  maxv = blockMax(m, scratch);
  float s = 0.0f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) s += expf(toFloat(l[v]) - maxv);
  sum = blockSum(s, scratch);
}

template <typename T>
__global__ void crossEntropyForwardKernel(float* losses, const T* logits, const int32_t* targets, int V) {
  __shared__ float scratch[32];
  const T* l = logits + static_cast<size_t>(blockIdx.x) * V;
  float maxv, sum;
  rowStats(l, V, scratch, maxv, sum);
  if (threadIdx.x == 0) losses[blockIdx.x] = logf(sum) + maxv - toFloat(l[targets[blockIdx.x]]);
}

template <typename T>
__global__ void crossEntropyBackwardKernel(T* dlogits, const T* logits, const int32_t* targets, float scale,
                                           int V) {
  __shared__ float scratch[32];
  const T* l = logits + static_cast<size_t>(blockIdx.x) * V;
  T* d = dlogits + static_cast<size_t>(blockIdx.x) * V;
  float maxv, sum;
  rowStats(l, V, scratch, maxv, sum);
  const float inv = 1.0f / sum;
  const int target = targets[blockIdx.x];
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float p = expf(toFloat(l[v]) - maxv) * inv;
    d[v] = fromFloat<T>(toFloat(d[v]) + scale * (p - (v == target ? 1.0f : 0.0f)));
  }
}

// Loss and gradient in one pass over the row: online max and sum (one read), then the gradient written
// over the logits (a second read and a write).
template <typename T>
__global__ void crossEntropyFusedKernel(float* losses, T* logits, const int32_t* targets, float scale,
                                        int V) {
  __shared__ float scratch[32];
  __shared__ float targetLogit;
  T* l = logits + static_cast<size_t>(blockIdx.x) * V;
  float m = -INFINITY, s = 0.0f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float x = toFloat(l[v]);
    if (x > m) {
      s = s * expf(m - x) + 1.0f;
      m = x;
    } else {
      s += expf(x - m);
    }
  }
  const float maxv = blockMax(m, scratch);
  const float sum = blockSum(m == -INFINITY ? 0.0f : s * expf(m - maxv), scratch);
  const int target = targets[blockIdx.x];
  if (threadIdx.x == 0) targetLogit = toFloat(l[target]);
  __syncthreads();
  if (threadIdx.x == 0) losses[blockIdx.x] = logf(sum) + maxv - targetLogit;
  const float inv = 1.0f / sum;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float p = expf(toFloat(l[v]) - maxv) * inv;
    l[v] = fromFloat<T>(scale * (p - (v == target ? 1.0f : 0.0f)));
  }
}

// The fused pass for bf16 rows of up to 57,344 classes: each thread keeps its vectors of eight in registers,
// packed as loaded (4 registers per 8 logits), so the row is read from memory once and written once: 3.3 GB a
// step at the benchmark model's 16384 × 50304 instead of the 4.9 GB of crossEntropyFusedKernel's two reads,
// which also spent one expf per element per read on scalar 2-byte loads (3.4 ms, 1.45 TB/s). exp2f of a
// pre-scaled argument is one ex2.approx (2 ulp).
constexpr int kMaxVectorsPerThread = 8;
// Threads a block of k vectors a thread may have. At 1024 ptxas keeps 64 registers a thread, which 8
// vectors (32 registers of logits alone) overflow: 64 bytes of spills. At 896 it takes 72 and spills 14
// bytes (76 of reloads, from L1); fewer threads would not give it more (25-28 warps on 4 schedulers).
constexpr int maxThreads(int vectors) {
  return vectors < kMaxVectorsPerThread ? 1024 : 896;
}
constexpr float kLog2e = 1.4426950408889634f;

template <int kVectors>
__global__ void __launch_bounds__(maxThreads(kVectors))
    crossEntropyRowInRegistersKernel(float* losses, __nv_bfloat16* logits, const int32_t* targets,
                                     float scale, int V) {
  __shared__ float scratch[32];
  const int nVec = V / 8;
  __nv_bfloat16* l = logits + static_cast<size_t>(blockIdx.x) * V;
  const int target = targets[blockIdx.x];
  // Read before any thread overwrites the row (the two block reductions below synchronise first).
  const float targetLogit = threadIdx.x == 0 ? toFloat(l[target]) : 0.0f;
  uint4 raw[kVectors];
  float m = -INFINITY;
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    const int vec = threadIdx.x + i * blockDim.x;
    if (vec < nVec) {
      raw[i] = reinterpret_cast<const uint4*>(l)[vec];
      float v[8];
      unpack8(v, raw[i]);
#pragma unroll
      for (int j = 0; j < 8; ++j) m = fmaxf(m, v[j]);
    }
  }
  const float maxv = blockMax(m, scratch);
  const float shift = maxv * kLog2e;
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    if (threadIdx.x + i * blockDim.x < nVec) {
      float v[8];
      unpack8(v, raw[i]);
#pragma unroll
      for (int j = 0; j < 8; ++j) s += exp2f(fmaf(v[j], kLog2e, -shift));
    }
  }
  const float sum = blockSum(s, scratch);
  if (threadIdx.x == 0) losses[blockIdx.x] = logf(sum) + maxv - targetLogit;
  const float scaleOverSum = scale / sum;
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    const int vec = threadIdx.x + i * blockDim.x;
    if (vec < nVec) {
      float v[8];
      unpack8(v, raw[i]);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        v[j] = exp2f(fmaf(v[j], kLog2e, -shift)) * scaleOverSum;
        if (vec * 8 + j == target) v[j] -= scale;
      }
      store8(l + static_cast<size_t>(vec) * 8, v);
    }
  }
}

template <int kVectors>
void launchRowInRegisters(float* losses, __nv_bfloat16* logits, const int32_t* targets, float scale, int n,
                          int V, cudaStream_t stream) {
  const int nVec = V / 8;
  const int threads = std::min(maxThreads(kVectors), (((nVec + kVectors - 1) / kVectors) + 31) / 32 * 32);
  crossEntropyRowInRegistersKernel<kVectors>
      <<<static_cast<unsigned>(n), threads, 0, stream>>>(losses, logits, targets, scale, V);
}

// Whether a bf16 row fits the registers of one block and its vectors are 16-byte aligned. (fp32 rows
// would need twice the registers; fp32 runs are for checking against the CPU, not for speed.)
bool rowFitsRegisters(const __nv_bfloat16* logits, int V) {
  return V % 8 == 0 && V / 8 <= kMaxVectorsPerThread * maxThreads(kMaxVectorsPerThread) &&
         vectorizable(logits);
}

void crossEntropyRowInRegisters(float* losses, __nv_bfloat16* logits, const int32_t* targets, float scale,
                                int n, int V, cudaStream_t stream) {
  const int nVec = V / 8;
  if (nVec <= 1024) {
    launchRowInRegisters<1>(losses, logits, targets, scale, n, V, stream);
  } else if (nVec <= 2 * 1024) {
    launchRowInRegisters<2>(losses, logits, targets, scale, n, V, stream);
  } else if (nVec <= 4 * 1024) {
    launchRowInRegisters<4>(losses, logits, targets, scale, n, V, stream);
  } else {
    launchRowInRegisters<kMaxVectorsPerThread>(losses, logits, targets, scale, n, V, stream);
  }
}

}  // namespace

template <typename T>
void crossEntropyForwardBackward(float* losses, T* logits, const int32_t* targets, float scale, int n, int V,
                                 cudaStream_t stream) {
  NvtxRange range("crossEntropyForwardBackward");
  MOESCOPE_CUDA_REQUIRE("crossEntropyForwardBackward", n >= 0 && V > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("crossEntropyForwardBackward", losses && logits && targets);
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (rowFitsRegisters(logits, V)) {
      crossEntropyRowInRegisters(losses, logits, targets, scale, n, V, stream);
      MOESCOPE_CUDA_CHECK_LAUNCH();
      return;
    }
  }
  crossEntropyFusedKernel<T>
      <<<static_cast<unsigned>(n), kThreads, 0, stream>>>(losses, logits, targets, scale, V);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void crossEntropyForwardBackwardTwoReads(float* losses, T* logits, const int32_t* targets, float scale, int n,
                                         int V, cudaStream_t stream) {
  NvtxRange range("crossEntropyForwardBackwardTwoReads");
  MOESCOPE_CUDA_REQUIRE("crossEntropyForwardBackwardTwoReads", n >= 0 && V > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("crossEntropyForwardBackwardTwoReads", losses && logits && targets);
  crossEntropyFusedKernel<T>
      <<<static_cast<unsigned>(n), kThreads, 0, stream>>>(losses, logits, targets, scale, V);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void crossEntropyForward(float* losses, const T* logits, const int32_t* targets, int n, int V,
                         cudaStream_t stream) {
  NvtxRange range("crossEntropyForward");
  MOESCOPE_CUDA_REQUIRE("crossEntropyForward", n >= 0 && V > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("crossEntropyForward", losses && logits && targets);
  crossEntropyForwardKernel<T><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(losses, logits, targets, V);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void crossEntropyBackward(T* dlogits, const T* logits, const int32_t* targets, float scale, int n, int V,
                          cudaStream_t stream) {
  NvtxRange range("crossEntropyBackward");
  MOESCOPE_CUDA_REQUIRE("crossEntropyBackward", n >= 0 && V > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("crossEntropyBackward", dlogits && logits && targets);
  MOESCOPE_CUDA_REQUIRE("crossEntropyBackward", static_cast<const void*>(dlogits) != logits);
  crossEntropyBackwardKernel<T>
      <<<static_cast<unsigned>(n), kThreads, 0, stream>>>(dlogits, logits, targets, scale, V);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template void crossEntropyForward<float>(float*, const float*, const int32_t*, int, int, cudaStream_t);
template void crossEntropyForward<__nv_bfloat16>(float*, const __nv_bfloat16*, const int32_t*, int, int,
                                                 cudaStream_t);
template void crossEntropyForwardBackward<float>(float*, float*, const int32_t*, float, int, int,
                                                 cudaStream_t);
template void crossEntropyForwardBackward<__nv_bfloat16>(float*, __nv_bfloat16*, const int32_t*, float, int,
                                                         int, cudaStream_t);
template void crossEntropyForwardBackwardTwoReads<float>(float*, float*, const int32_t*, float, int, int,
                                                         cudaStream_t);
template void crossEntropyForwardBackwardTwoReads<__nv_bfloat16>(float*, __nv_bfloat16*, const int32_t*,
                                                                 float, int, int, cudaStream_t);
template void crossEntropyBackward<float>(float*, const float*, const int32_t*, float, int, int,
                                          cudaStream_t);
template void crossEntropyBackward<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, const int32_t*, float,
                                                  int, int, cudaStream_t);

}  // namespace moescope::engine::cuda
