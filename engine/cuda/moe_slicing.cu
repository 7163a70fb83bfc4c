#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/moe_slicing.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kOrderThreads = 1024;
constexpr int kRowThreads = 256;

// One block. Counts the kept assignments per expert, turns the counts into offsets, then walks the
// assignments in index order in chunks of blockDim, placing each at its expert's next slot: the slot is
// the expert's fill before the chunk + its assignments in earlier warps + those of lower lanes.
__global__ void expertOrderKernel(int32_t* order, int32_t* offsets, int32_t* slotOf, const int32_t* choice,
                                  const uint8_t* keep, int nK, int E) {
  extern __shared__ int32_t shared[];
  const int nWarps = blockDim.x / 32;
  int32_t* warpCounts = shared;         // [nWarps][E]
  int32_t* fill = shared + nWarps * E;  // [E]
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  for (int e = threadIdx.x; e < E; e += blockDim.x) fill[e] = 0;
  __syncthreads();
  for (int a = threadIdx.x; a < nK; a += blockDim.x) {
    if (keep == nullptr || keep[a]) atomicAdd(&fill[choice[a]], 1);
  }
  __syncthreads();
  if (threadIdx.x == 0) {  // exclusive prefix: fill becomes each expert's first slot
    int run = 0;
    for (int e = 0; e < E; ++e) {
      const int c = fill[e];
      fill[e] = run;
      offsets[e] = run;
      run += c;
    }
    offsets[E] = run;
  }
  for (int base = 0; base < nK; base += blockDim.x) {
    for (int i = threadIdx.x; i < nWarps * E; i += blockDim.x) warpCounts[i] = 0;
    __syncthreads();
    const int a = base + static_cast<int>(threadIdx.x);
    const int e = a < nK && (keep == nullptr || keep[a]) ? choice[a] : -1;
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    const int rank = __popc(peers & ((1u << lane) - 1u));
    if (e >= 0 && rank == 0) warpCounts[warp * E + e] = __popc(peers);
    __syncthreads();
    for (int ee = threadIdx.x; ee < E; ee += blockDim.x) {
      int run = fill[ee];
      for (int w = 0; w < nWarps; ++w) {
        const int c = warpCounts[w * E + ee];
        warpCounts[w * E + ee] = run;
        run += c;
      }
      fill[ee] = run;
    }
    __syncthreads();
    if (a < nK) {
      if (e >= 0) {
        const int slot = warpCounts[warp * E + e] + rank;
        order[slot] = a;
        slotOf[a] = slot;
      } else {
        slotOf[a] = -1;
      }
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void gatherKernel(T* out, const T* x, const int32_t* order, int j0, int K, int C) {
  const int r = blockIdx.x;
  const size_t token = static_cast<size_t>(order[j0 + r] / K);
  const T* src = x + token * C;
  T* dst = out + static_cast<size_t>(r) * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
}

template <typename T>
__global__ void gatherBackwardKernel(T* dx, const T* dout, const int32_t* slotOf, int j0, int m, int K,
                                     int C) {
  const size_t token = blockIdx.x;
  int slots[8];
  int count = 0;
  for (int k = 0; k < K && count < 8; ++k) {
    const int s = slotOf[token * K + k];
    if (s >= j0 && s < j0 + m) slots[count++] = s - j0;
  }
  if (count == 0) return;
  T* d = dx + token * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = toFloat(d[c]);
    for (int i = 0; i < count; ++i) acc += toFloat(dout[static_cast<size_t>(slots[i]) * C + c]);
    d[c] = fromFloat<T>(acc);
  }
}

template <typename T>
__global__ void combineKernel(T* y, const T* src, const float* p, const int32_t* choice,
                              const int32_t* slotOf, int j0, int m, int E, int K, int C) {
  const size_t token = blockIdx.x;
  int slots[8];
  float weights[8];
  int count = 0;
  for (int k = 0; k < K && count < 8; ++k) {
    const int s = slotOf[token * K + k];
    if (s >= j0 && s < j0 + m) {
      slots[count] = s - j0;
      weights[count] = p[token * E + choice[token * K + k]];
      ++count;
    }
  }
  if (count == 0) return;
  T* out = y + token * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = toFloat(out[c]);
    for (int i = 0; i < count; ++i) acc += weights[i] * toFloat(src[static_cast<size_t>(slots[i]) * C + c]);
    out[c] = fromFloat<T>(acc);
  }
}

template <typename T>
__global__ void combineBackwardKernel(T* dsrc, float* dp, const T* dy, const T* src, const float* p,
                                      const int32_t* choice, const int32_t* order, int j0, int E, int K,
                                      int C) {
  __shared__ float scratch[32];
  const size_t r = blockIdx.x;
  const int a = order[j0 + r];
  const size_t token = static_cast<size_t>(a / K);
  const size_t pe = token * E + choice[a];
  const T* d = dy + token * C;
  const T* s = src + r * C;
  const float w = p[pe];
  float dot = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float g = toFloat(d[c]);
    if (dsrc) dsrc[r * C + c] = fromFloat<T>(toFloat(dsrc[r * C + c]) + w * g);
    dot += g * toFloat(s[c]);
  }
  if (dp) {
    dot = blockSum(dot, scratch);
    if (threadIdx.x == 0) dp[pe] += dot;
  }
}

// One block per slot row r of one expert's slots: its token appears in them once, so rows never collide.
template <typename T>
__global__ void scatterExpertKernel(T* y, const T* src, const float* p, const int32_t* choice,
                                    const int32_t* order, int j0, int E, int K, int C) {
  const size_t r = blockIdx.x;
  const int a = order[j0 + r];
  const size_t token = static_cast<size_t>(a / K);
  const float w = p[token * E + choice[a]];
  T* out = y + token * C;
  const T* s = src + r * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    out[c] = fromFloat<T>(toFloat(out[c]) + w * toFloat(s[c]));
}

template <typename T>
__global__ void gatherExpertBackwardKernel(T* dx, const T* dout, const int32_t* order, int j0, int K, int C) {
  const size_t r = blockIdx.x;
  T* d = dx + static_cast<size_t>(order[j0 + r] / K) * C;
  const T* g = dout + r * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) d[c] = fromFloat<T>(toFloat(d[c]) + toFloat(g[c]));
}

}  // namespace

void buildExpertOrder(int32_t* order, int32_t* offsets, int32_t* slotOf, const int32_t* choice,
                      const uint8_t* keep, int n, int E, int K, cudaStream_t stream) {
  NvtxRange range("buildExpertOrder");
  MOESCOPE_CUDA_REQUIRE("buildExpertOrder", n >= 0 && E > 0 && E <= kSlicingMaxExperts && K >= 1 && K <= E);
  MOESCOPE_CUDA_REQUIRE("buildExpertOrder", order && offsets && slotOf && choice);
  MOESCOPE_CUDA_REQUIRE("buildExpertOrder", static_cast<long long>(n) * K < (1ll << 31));
  const size_t smem = (static_cast<size_t>(kOrderThreads / 32) + 1) * E * sizeof(int32_t);  // <= 33 KiB
  expertOrderKernel<<<1, kOrderThreads, smem, stream>>>(order, offsets, slotOf, choice, keep, n * K, E);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void gatherAssignments(T* out, const T* x, const int32_t* order, int j0, int m, int K, int C,
                       cudaStream_t stream) {
  NvtxRange range("gatherAssignments");
  MOESCOPE_CUDA_REQUIRE("gatherAssignments", j0 >= 0 && m >= 0 && K >= 1 && C > 0);
  if (m == 0) return;
  MOESCOPE_CUDA_REQUIRE("gatherAssignments", out && x && order);
  gatherKernel<T><<<static_cast<unsigned>(m), kRowThreads, 0, stream>>>(out, x, order, j0, K, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void gatherAssignmentsBackward(T* dx, const T* dout, const int32_t* slotOf, int j0, int m, int n, int K,
                               int C, cudaStream_t stream) {
  NvtxRange range("gatherAssignmentsBackward");
  MOESCOPE_CUDA_REQUIRE("gatherAssignmentsBackward",
                        j0 >= 0 && m >= 0 && n >= 0 && K >= 1 && K <= 8 && C > 0);
  if (m == 0 || n == 0) return;
  MOESCOPE_CUDA_REQUIRE("gatherAssignmentsBackward", dx && dout && slotOf);
  gatherBackwardKernel<T>
      <<<static_cast<unsigned>(n), kRowThreads, 0, stream>>>(dx, dout, slotOf, j0, m, K, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void combineAssignments(T* y, const T* src, const float* p, const int32_t* choice, const int32_t* slotOf,
                        int j0, int m, int n, int E, int K, int C, cudaStream_t stream) {
  NvtxRange range("combineAssignments");
  MOESCOPE_CUDA_REQUIRE("combineAssignments",
                        j0 >= 0 && m >= 0 && n >= 0 && E > 0 && K >= 1 && K <= 8 && C > 0);
  if (m == 0 || n == 0) return;
  MOESCOPE_CUDA_REQUIRE("combineAssignments", y && src && p && choice && slotOf);
  combineKernel<T>
      <<<static_cast<unsigned>(n), kRowThreads, 0, stream>>>(y, src, p, choice, slotOf, j0, m, E, K, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void combineAssignmentsBackward(T* dsrc, float* dp, const T* dy, const T* src, const float* p,
                                const int32_t* choice, const int32_t* order, int j0, int m, int E, int K,
                                int C, cudaStream_t stream) {
  NvtxRange range("combineAssignmentsBackward");
  MOESCOPE_CUDA_REQUIRE("combineAssignmentsBackward", j0 >= 0 && m >= 0 && E > 0 && K >= 1 && C > 0);
  if (m == 0 || (dsrc == nullptr && dp == nullptr)) return;
  MOESCOPE_CUDA_REQUIRE("combineAssignmentsBackward", dy && src && p && choice && order);
  combineBackwardKernel<T><<<static_cast<unsigned>(m), kRowThreads, 0, stream>>>(dsrc, dp, dy, src, p, choice,
                                                                                 order, j0, E, K, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void scatterExpertRows(T* y, const T* src, const float* p, const int32_t* choice, const int32_t* order,
                       int j0, int m, int E, int K, int C, cudaStream_t stream) {
  NvtxRange range("scatterExpertRows");
  MOESCOPE_CUDA_REQUIRE("scatterExpertRows", j0 >= 0 && m >= 0 && E > 0 && K >= 1 && C > 0);
  if (m == 0) return;
  MOESCOPE_CUDA_REQUIRE("scatterExpertRows", y && src && p && choice && order);
  scatterExpertKernel<T>
      <<<static_cast<unsigned>(m), kRowThreads, 0, stream>>>(y, src, p, choice, order, j0, E, K, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void gatherExpertRowsBackward(T* dx, const T* dout, const int32_t* order, int j0, int m, int K, int C,
                              cudaStream_t stream) {
  NvtxRange range("gatherExpertRowsBackward");
  MOESCOPE_CUDA_REQUIRE("gatherExpertRowsBackward", j0 >= 0 && m >= 0 && K >= 1 && C > 0);
  if (m == 0) return;
  MOESCOPE_CUDA_REQUIRE("gatherExpertRowsBackward", dx && dout && order);
  gatherExpertBackwardKernel<T>
      <<<static_cast<unsigned>(m), kRowThreads, 0, stream>>>(dx, dout, order, j0, K, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

#define MOESCOPE_INSTANTIATE(T)                                                                             \
  template void gatherAssignments<T>(T*, const T*, const int32_t*, int, int, int, int, cudaStream_t);       \
  template void gatherAssignmentsBackward<T>(T*, const T*, const int32_t*, int, int, int, int, int,         \
                                             cudaStream_t);                                                 \
  template void combineAssignments<T>(T*, const T*, const float*, const int32_t*, const int32_t*, int, int, \
                                      int, int, int, int, cudaStream_t);                                    \
  template void combineAssignmentsBackward<T>(T*, float*, const T*, const T*, const float*, const int32_t*, \
                                              const int32_t*, int, int, int, int, int, cudaStream_t);       \
  template void scatterExpertRows<T>(T*, const T*, const float*, const int32_t*, const int32_t*, int, int,  \
                                     int, int, int, cudaStream_t);                                          \
  template void gatherExpertRowsBackward<T>(T*, const T*, const int32_t*, int, int, int, int, cudaStream_t);
MOESCOPE_INSTANTIATE(float)
MOESCOPE_INSTANTIATE(__nv_bfloat16)
#undef MOESCOPE_INSTANTIATE

}  // namespace moescope::engine::cuda
