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

}  // namespace

template <typename T>
void crossEntropyForwardBackward(float* losses, T* logits, const int32_t* targets, float scale, int n, int V,
                                 cudaStream_t stream) {
  NvtxRange range("crossEntropyForwardBackward");
  MOESCOPE_CUDA_REQUIRE("crossEntropyForwardBackward", n >= 0 && V > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("crossEntropyForwardBackward", losses && logits && targets);
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
template void crossEntropyBackward<float>(float*, const float*, const int32_t*, float, int, int,
                                          cudaStream_t);
template void crossEntropyBackward<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, const int32_t*, float,
                                                  int, int, cudaStream_t);

}  // namespace moescope::engine::cuda
