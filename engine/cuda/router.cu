#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/router.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;  // 8 warps, one token each
constexpr int kWarps = kThreads / 32;
constexpr int kCapacityThreads = 1024;

// a beats b: larger probability, or equal probability and lower index
__device__ __forceinline__ bool better(float pa, int ea, float pb, int eb) {
  return pa > pb || (pa == pb && ea < eb);
}

template <typename T>
__global__ void softmaxTopKKernel(float* p, int32_t* choice, const T* logits, int n, int E, int K) {
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= n) return;  // whole warp
  const T* l = logits + static_cast<size_t>(row) * E;
  float* pr = p + static_cast<size_t>(row) * E;
  float m = -INFINITY;
  for (int e = lane; e < E; e += 32) m = fmaxf(m, toFloat(l[e]));
  m = warpMax(m);
  float s = 0.0f;
  for (int e = lane; e < E; e += 32) s += expf(toFloat(l[e]) - m);
  const float inv = 1.0f / warpSum(s);
  for (int e = lane; e < E; e += 32) pr[e] = expf(toFloat(l[e]) - m) * inv;
  __syncwarp();  // the probabilities written above are read back by other lanes below

  int picked[kRouterMaxK];
  for (int k = 0; k < K; ++k) {
    float bestP = -1.0f;
    int bestE = E;  // sentinel, loses to every real expert
    for (int e = lane; e < E; e += 32) {
      bool taken = false;
      for (int j = 0; j < k; ++j) taken |= picked[j] == e;
      const float pe = pr[e];
      if (!taken && better(pe, e, bestP, bestE)) {
        bestP = pe;
        bestE = e;
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float op = __shfl_xor_sync(0xffffffffu, bestP, o);
      const int oe = __shfl_xor_sync(0xffffffffu, bestE, o);
      if (better(op, oe, bestP, bestE)) {
        bestP = op;
        bestE = oe;
      }
    }
    picked[k] = bestE;
    if (lane == 0) choice[static_cast<size_t>(row) * K + k] = bestE;
  }
}

// One block. For each pass k and each chunk of blockDim tokens (in token order), an assignment's
// position at its expert is: the expert's load before the chunk + the same expert's assignments in
// earlier warps of the chunk + those of lower lanes in its own warp (__match_any_sync).
__global__ void capacityKernel(uint8_t* keep, int32_t* expertLoad, int32_t* droppedOut, const int32_t* choice,
                               int n, int E, int K, int capacity) {
  extern __shared__ int32_t shared[];
  const int nWarps = blockDim.x / 32;
  int32_t* warpCounts = shared;         // [nWarps][E]
  int32_t* load = shared + nWarps * E;  // [E], every assignment seen, kept or not
  __shared__ float scratch[32];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  for (int e = threadIdx.x; e < E; e += blockDim.x) load[e] = 0;
  int dropped = 0;
  for (int k = 0; k < K; ++k) {
    for (int base = 0; base < n; base += blockDim.x) {
      for (int i = threadIdx.x; i < nWarps * E; i += blockDim.x) warpCounts[i] = 0;
      __syncthreads();
      const int t = base + static_cast<int>(threadIdx.x);
      const int e = t < n ? choice[static_cast<size_t>(t) * K + k] : -1;
      const unsigned peers = __match_any_sync(0xffffffffu, e);
      const int rank = __popc(peers & ((1u << lane) - 1u));
      if (e >= 0 && rank == 0) warpCounts[warp * E + e] = __popc(peers);
      __syncthreads();
      for (int ee = threadIdx.x; ee < E; ee += blockDim.x) {  // exclusive prefix over warps, per expert
        int run = load[ee];
        for (int w = 0; w < nWarps; ++w) {
          const int c = warpCounts[w * E + ee];
          warpCounts[w * E + ee] = run;
          run += c;
        }
        load[ee] = run;
      }
      __syncthreads();
      if (e >= 0) {
        const int pos = warpCounts[warp * E + e] + rank;
        const bool kept = capacity < 0 || pos < capacity;
        keep[static_cast<size_t>(t) * K + k] = kept ? 1 : 0;
        dropped += kept ? 0 : 1;
      }
      __syncthreads();  // warpCounts is cleared for the next chunk
    }
  }
  if (expertLoad) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
      expertLoad[e] = capacity < 0 ? load[e] : min(load[e], capacity);
    }
  }
  const float total = blockSum(static_cast<float>(dropped), scratch);  // exact below 2^24
  if (droppedOut && threadIdx.x == 0) *droppedOut = static_cast<int32_t>(total);
}

__global__ void softmaxBackwardKernel(float* dlogits, const float* dp, const float* p, int n, int E) {
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= n) return;
  const float* pr = p + static_cast<size_t>(row) * E;
  const float* dpr = dp + static_cast<size_t>(row) * E;
  float* dl = dlogits + static_cast<size_t>(row) * E;
  float dot = 0.0f;
  for (int e = lane; e < E; e += 32) dot += dpr[e] * pr[e];
  dot = warpSum(dot);
  for (int e = lane; e < E; e += 32) dl[e] += pr[e] * (dpr[e] - dot);
}

}  // namespace

template <typename T>
void routerSoftmaxTopK(float* p, int32_t* choice, const T* logits, int n, int E, int K, cudaStream_t stream) {
  NvtxRange range("routerSoftmaxTopK");
  MOESCOPE_CUDA_REQUIRE("routerSoftmaxTopK", n >= 0 && E > 0 && K >= 1 && K <= E && K <= kRouterMaxK);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("routerSoftmaxTopK", p && choice && logits);
  softmaxTopKKernel<T><<<ceilDiv(n, kWarps), kThreads, 0, stream>>>(p, choice, logits, n, E, K);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

void routerCapacity(uint8_t* keep, int32_t* expertLoad, int32_t* dropped, const int32_t* choice, int n, int E,
                    int K, int capacity, cudaStream_t stream) {
  NvtxRange range("routerCapacity");
  MOESCOPE_CUDA_REQUIRE("routerCapacity", n >= 0 && E > 0 && E <= kRouterMaxExperts && K >= 1 && K <= E);
  MOESCOPE_CUDA_REQUIRE("routerCapacity", keep && choice);
  const size_t smem = (static_cast<size_t>(kCapacityThreads / 32) + 1) * E * sizeof(int32_t);  // <= 33 KiB
  capacityKernel<<<1, kCapacityThreads, smem, stream>>>(keep, expertLoad, dropped, choice, n, E, K, capacity);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

void routerSoftmaxBackward(float* dlogits, const float* dp, const float* p, int n, int E,
                           cudaStream_t stream) {
  NvtxRange range("routerSoftmaxBackward");
  MOESCOPE_CUDA_REQUIRE("routerSoftmaxBackward", n >= 0 && E > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("routerSoftmaxBackward", dlogits && dp && p);
  softmaxBackwardKernel<<<ceilDiv(n, kWarps), kThreads, 0, stream>>>(dlogits, dp, p, n, E);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template void routerSoftmaxTopK<float>(float*, int32_t*, const float*, int, int, int, cudaStream_t);
template void routerSoftmaxTopK<__nv_bfloat16>(float*, int32_t*, const __nv_bfloat16*, int, int, int,
                                               cudaStream_t);

}  // namespace moescope::engine::cuda
