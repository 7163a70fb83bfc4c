#include "engine/cuda/aux_loss.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"

namespace moescope::engine::cuda {

namespace {

constexpr int kForwardThreads = 1024;  // 32 warps
constexpr int kBackwardThreads = 256;

// Column sums of p: for each chunk of 32 experts, lane l of every warp sums expert (chunk + l) over the
// warp's rows; the 32 warps' partial sums are then added in shared memory.
__global__ void auxForwardKernel(float* f, float* probMean, float* aux, const float* p, const int32_t* choice,
                                 int n, int E, int K) {
  __shared__ float partial[32][33];
  __shared__ int counts[kAuxLossMaxExperts];
  __shared__ float fS[kAuxLossMaxExperts];
  __shared__ float meanS[kAuxLossMaxExperts];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int nWarps = blockDim.x / 32;
  for (int e = threadIdx.x; e < E; e += blockDim.x) counts[e] = 0;
  __syncthreads();
  for (int t = threadIdx.x; t < n; t += blockDim.x) atomicAdd(&counts[choice[static_cast<size_t>(t) * K]], 1);
  for (int chunk = 0; chunk < E; chunk += 32) {
    const int e = chunk + lane;
    float acc = 0.0f;
    if (e < E) {
      for (int t = warp; t < n; t += nWarps) acc += p[static_cast<size_t>(t) * E + e];
    }
    partial[warp][lane] = acc;
    __syncthreads();
    if (warp == 0 && e < E) {
      float sum = 0.0f;
      for (int w = 0; w < nWarps; ++w) sum += partial[w][lane];
      meanS[e] = sum / n;
    }
    __syncthreads();
  }
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    fS[e] = static_cast<float>(counts[e]) / n;
    f[e] = fS[e];
    probMean[e] = meanS[e];
  }
  __syncthreads();
  if (aux && threadIdx.x == 0) {
    float sum = 0.0f;
    for (int e = 0; e < E; ++e) sum += fS[e] * meanS[e];
    *aux = E * sum;
  }
}

__global__ void auxBackwardKernel(float* dp, const float* f, float scale, size_t total, int E) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x) {
    dp[i] += scale * f[i % E];
  }
}

}  // namespace

void auxLossForward(float* f, float* probMean, float* aux, const float* p, const int32_t* choice, int n,
                    int E, int K, cudaStream_t stream) {
  NvtxRange range("auxLossForward");
  MOESCOPE_CUDA_REQUIRE("auxLossForward", n > 0 && E > 0 && E <= kAuxLossMaxExperts && K >= 1 && K <= E);
  MOESCOPE_CUDA_REQUIRE("auxLossForward", f && probMean && p && choice);
  auxForwardKernel<<<1, kForwardThreads, 0, stream>>>(f, probMean, aux, p, choice, n, E, K);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

void auxLossBackward(float* dp, const float* f, float daux, int n, int E, cudaStream_t stream) {
  NvtxRange range("auxLossBackward");
  MOESCOPE_CUDA_REQUIRE("auxLossBackward", n >= 0 && E > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("auxLossBackward", dp && f);
  const size_t total = static_cast<size_t>(n) * E;
  auxBackwardKernel<<<gridStrideBlocks(total, kBackwardThreads), kBackwardThreads, 0, stream>>>(
      dp, f, daux * E / n, total, E);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace moescope::engine::cuda
