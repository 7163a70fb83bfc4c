// Fused causal attention on tensor cores (mma.sync m16n8k16, bf16 in, fp32 accumulate), the
// FlashAttention-2 scheme. A block of 4 warps takes a tile of 64 rows; each warp owns 16 of them, so a
// score tile of 16×64 lives in one warp's registers and its accumulator fragments can be re-packed
// as the A operand of the next product without going through shared memory.
//
// Forward: one block per (query tile, sequence·head); K and V tiles of 64 keys stream through shared
// memory by cp.async, the next K loading while P·V runs and the next V while the next Q·Kᵀ runs.
// Backward: one block per (key tile, sequence·head), walking the query tiles at or after it: Sᵀ = K Qᵀ
// and dPᵀ = V dOᵀ for the warp's 16 keys, dV += Pᵀ dO and dK += dSᵀ Q in registers, dQ += dS K through
// dSᵀ in shared memory and fp32 atomics into a workspace that a last kernel adds to dqkv.
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/flash_attention.h"

namespace moescope::engine::cuda {

namespace {

using bf16 = __nv_bfloat16;

constexpr int kTile = 64;  // key rows a forward block, query rows a backward block takes at a time
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// bf16 elements of a shared row: 16 bytes of padding put ldmatrix's 8 rows on 32 distinct banks.
template <int D>
constexpr int kStride = D + 8;
constexpr int kScoreStride = kTile + 8;

size_t align256(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}

__device__ __forceinline__ uint32_t sharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8×8 b16 matrices: lane l gives the address of row l%8 of matrix l/8; r[i] receives matrix i,
// lane l holding row l/4, columns 2·(l%4) and 2·(l%4)+1 (transposed: rows 2·(l%4), +1 of column l/4).
//
// ldmatrix, mma.sync with bf16 and cp.async need sm_80; compiled for an older architecture the kernels
// trap, and flashAttentionAvailable() says so before any is launched.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define MOESCOPE_FLASH_PTX 1
#endif

template <bool Trans>
__device__ __forceinline__ void ldmatrix4(uint32_t (&r)[4], const bf16* p) {
#ifdef MOESCOPE_FLASH_PTX
  if constexpr (Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sharedAddress(p)));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sharedAddress(p)));
  }
#else
  r[0] = r[1] = r[2] = r[3] = sharedAddress(p);
  __trap();
#endif
}
__device__ __forceinline__ void ldmatrix4(uint32_t (&r)[4], const bf16* p) {
  ldmatrix4<false>(r, p);
}
__device__ __forceinline__ void ldmatrix4Trans(uint32_t (&r)[4], const bf16* p) {
  ldmatrix4<true>(r, p);
}

// c[16×8] += a[16×16]·b[16×8]. With g = lane/4, t = lane%4, the PTX fragment layouts are
// a: (g, 2t..2t+1), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..); b: (2t..2t+1, g), (2t+8.., g);
// c: (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1). Two adjacent c tiles, packed to bf16, are an a.
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifndef MOESCOPE_FLASH_PTX
  __trap();
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// The A operand covering columns 16·kk..16·kk+15 of a 16×64 accumulator tile c[8][4].
__device__ __forceinline__ void packA(uint32_t (&a)[4], const float (&c)[kTile / 8][4], int kk) {
  a[0] = pack(c[2 * kk][0], c[2 * kk][1]);
  a[1] = pack(c[2 * kk][2], c[2 * kk][3]);
  a[2] = pack(c[2 * kk + 1][0], c[2 * kk + 1][1]);
  a[3] = pack(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

// Rows first..first+Rows−1 of a bf16 matrix (row stride ld, columns 0..D−1 from src) into
// dst[Rows][D+8], asynchronously, by a block of Threads; rows at or past Tlen are zero.
template <int D, int Rows, int Threads>
__device__ __forceinline__ void loadTile(bf16* dst, const bf16* src, size_t ld, int first, int Tlen) {
  constexpr int kPieces = D / 8;  // 16 bytes each
#pragma unroll
  for (int i = threadIdx.x; i < Rows * kPieces; i += Threads) {
    const int r = i / kPieces, c = i % kPieces;
    const bool inside = first + r < Tlen;
    const bf16* from = inside ? src + static_cast<size_t>(first + r) * ld + c * 8 : src;
#ifdef MOESCOPE_FLASH_PTX
    asm volatile(
        "cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sharedAddress(dst + r * kStride<D> + c * 8)),
        "l"(from), "r"(inside ? 16 : 0));
#else
    (void)from;
    __trap();
#endif
  }
}
__device__ __forceinline__ void commitLoads() {
#ifdef MOESCOPE_FLASH_PTX
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
// Waits until at most N of the committed groups are still in flight.
template <int N>
__device__ __forceinline__ void waitLoads() {
#ifdef MOESCOPE_FLASH_PTX
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// dst[0..1] += v, one atomic (sm_90) or two.
__device__ __forceinline__ void atomicAdd2(float* dst, float2 v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(dst), v);
#else
  atomicAdd(dst, v.x);
  atomicAdd(dst + 1, v.y);
#endif
}

// S (16×64) = the warp's 16 rows of sA (from row a0) · the 64 rows of sBᵀ, over D.
template <int D>
__device__ __forceinline__ void rowProducts(float (&s)[kTile / 8][4], const bf16* sA, int a0, const bf16* sB,
                                            int lane) {
  const int mi = lane / 8, mr = lane % 8;
#pragma unroll
  for (int j = 0; j < kTile / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
  for (int kc = 0; kc < D / 16; ++kc) {
    uint32_t a[4];
    ldmatrix4(a, sA + (a0 + (mi & 1) * 8 + mr) * kStride<D> + kc * 16 + (mi >> 1) * 8);
#pragma unroll
    for (int j = 0; j < kTile / 8; j += 2) {
      uint32_t b[4];
      ldmatrix4(b, sB + ((j + (mi >> 1)) * 8 + mr) * kStride<D> + kc * 16 + (mi & 1) * 8);
      mma(s[j], a, b[0], b[1]);
      mma(s[j + 1], a, b[2], b[3]);
    }
  }
}

// acc (16×D) += P (16×64 in registers, as fp32 fragments) · sB (64 rows × D in shared memory).
template <int D>
__device__ __forceinline__ void accumulateProduct(float (&acc)[D / 8][4], const float (&p)[kTile / 8][4],
                                                  const bf16* sB, int lane) {
  const int mi = lane / 8, mr = lane % 8;
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk) {
    uint32_t a[4];
    packA(a, p, kk);
#pragma unroll
    for (int n = 0; n < D / 8; n += 2) {
      uint32_t b[4];
      ldmatrix4Trans(b, sB + (kk * 16 + (mi & 1) * 8 + mr) * kStride<D> + (n + (mi >> 1)) * 8);
      mma(acc[n], a, b[0], b[1]);
      mma(acc[n + 1], a, b[2], b[3]);
    }
  }
}

// One block per (tile of 16·Warps queries, sequence·head).
template <int D, int Warps>
__global__ void __launch_bounds__(32 * Warps)
    flashForwardKernel(bf16* out, float* lse, const bf16* qkv, int Tlen, int NH, float scaleLog2) {
  constexpr int kRows = 16 * Warps, kThreads = 32 * Warps;
  static_assert(kRows <= 2 * kTile, "Q is staged through the K and V tiles");
  __shared__ __align__(128) bf16 sKV[2 * kTile * kStride<D>];
  bf16* sK = sKV;
  bf16* sV = sKV + kTile * kStride<D>;
  const int qb = gridDim.x - 1 - blockIdx.x;  // the longest rows first
  const int b = blockIdx.y / NH, h = blockIdx.y % NH;
  const int C = NH * D;
  const size_t ld = static_cast<size_t>(3) * C;
  const bf16* q = qkv + static_cast<size_t>(b) * Tlen * ld + static_cast<size_t>(h) * D;
  const bf16* k = q + C;
  const bf16* v = q + 2 * C;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int mi = lane / 8, mr = lane % 8;

  // Q's fragments, staged through the V tile (and the K tile when Q has more rows than a tile), stay in
  // registers for the whole pass.
  bf16* sQ = kRows <= kTile ? sV : sKV;
  loadTile<D, kRows, kThreads>(sQ, q, ld, qb * kRows, Tlen);
  commitLoads();
  if constexpr (kRows <= kTile) {
    loadTile<D, kTile, kThreads>(sK, k, ld, 0, Tlen);
    commitLoads();
    waitLoads<1>();  // Q (the first K may still be loading)
  } else {
    waitLoads<0>();
  }
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kc = 0; kc < D / 16; ++kc)
    ldmatrix4(qf[kc], sQ + (warp * 16 + (mi & 1) * 8 + mr) * kStride<D> + kc * 16 + (mi >> 1) * 8);
  __syncthreads();
  if constexpr (kRows > kTile) {
    loadTile<D, kTile, kThreads>(sK, k, ld, 0, Tlen);
    commitLoads();
  }
  loadTile<D, kTile, kThreads>(sV, v, ld, 0, Tlen);
  commitLoads();

  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows row0 and row0 + 8, log2 units
  const int warpFirst = qb * kRows + warp * 16;
  const int row0 = warpFirst + g;
  const int nkb = (min(qb * kRows + kRows, Tlen) - 1) / kTile + 1;  // key tiles up to the block's last row

  for (int kb = 0; kb < nkb; ++kb) {
    // The warp takes part in a tile only if some key of it precedes some row of the warp (always so when the
    // block's rows are no more than a tile's keys).
    const bool live = kRows <= kTile || kb * kTile <= warpFirst + 15;
    waitLoads<1>();  // K of this tile (its V may still be loading)
    __syncthreads();
    float s[kTile / 8][4];
    if (live) {
#pragma unroll
      for (int j = 0; j < kTile / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
      for (int kc = 0; kc < D / 16; ++kc) {
#pragma unroll
        for (int j = 0; j < kTile / 8; j += 2) {
          uint32_t bk[4];
          ldmatrix4(bk, sK + ((j + (mi >> 1)) * 8 + mr) * kStride<D> + kc * 16 + (mi & 1) * 8);
          mma(s[j], qf[kc], bk[0], bk[1]);
          mma(s[j + 1], qf[kc], bk[2], bk[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with this K
    if (kb + 1 < nkb) loadTile<D, kTile, kThreads>(sK, k, ld, (kb + 1) * kTile, Tlen);
    commitLoads();  // possibly empty: keeps the count of groups in flight the same every tile

    if (live) {
      // Online softmax in log2 units; keys after the row are masked where the tile reaches past the warp's
      // first row.
      const bool masked = kb * kTile + kTile - 1 > warpFirst;
      float mx[2] = {m[0], m[1]};
#pragma unroll
      for (int j = 0; j < kTile / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[j][e] * scaleLog2;
          if (masked && kb * kTile + j * 8 + 2 * t + (e & 1) > row0 + (e >> 1) * 8) x = -INFINITY;
          s[j][e] = x;
          mx[e >> 1] = fmaxf(mx[e >> 1], x);
        }
      }
      float corr[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        corr[r] = exp2f(m[r] - mx[r]);  // 0 on the first tile (m = −inf; key 0 keeps mx finite)
        m[r] = mx[r];
        l[r] *= corr[r];
      }
#pragma unroll
      for (int j = 0; j < kTile / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[j][e] = exp2f(s[j][e] - m[e >> 1]);
          l[e >> 1] += s[j][e];
        }
      }
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        o[n][0] *= corr[0];
        o[n][1] *= corr[0];
        o[n][2] *= corr[1];
        o[n][3] *= corr[1];
      }
    }
    waitLoads<1>();  // V of this tile (the next K may still be loading)
    __syncthreads();
    if (live) accumulateProduct<D>(o, s, sV, lane);
    __syncthreads();  // every warp is done with this V
    if (kb + 1 < nkb) loadTile<D, kTile, kThreads>(sV, v, ld, (kb + 1) * kTile, Tlen);
    commitLoads();
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    const int row = row0 + 8 * r;
    if (row >= Tlen) continue;
    const float inv = 1.0f / l[r];
    bf16* dst = out + (static_cast<size_t>(b) * Tlen + row) * C + static_cast<size_t>(h) * D + 2 * t;
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<uint32_t*>(dst + n * 8) = pack(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
    if (t == 0) lse[(static_cast<size_t>(b) * NH + h) * Tlen + row] = (m[r] + log2f(l[r])) * kLn2;
  }
}

// delta[b,h,t] = Σ_d dout[b,t,h,d]·out[b,t,h,d], one warp a row.
__global__ void rowDotKernel(float* delta, const bf16* dout, const bf16* out, int B, int Tlen, int NH,
                             int D) {
  const size_t rows = static_cast<size_t>(B) * Tlen * NH;
  const size_t row = blockIdx.x * size_t{blockDim.x / 32} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const auto* a = reinterpret_cast<const __nv_bfloat162*>(dout + row * D);
  const auto* c = reinterpret_cast<const __nv_bfloat162*>(out + row * D);
  float sum = 0.0f;
  for (int i = lane; i < D / 2; i += 32) {
    const float2 x = __bfloat1622float2(a[i]), y = __bfloat1622float2(c[i]);
    sum += x.x * y.x + x.y * y.y;
  }
  sum = warpSum(sum);
  const int h = static_cast<int>(row % NH);
  const size_t bt = row / NH;
  const int b = static_cast<int>(bt / Tlen), tt = static_cast<int>(bt % Tlen);
  if (lane == 0) delta[(static_cast<size_t>(b) * NH + h) * Tlen + tt] = sum;
}

template <int D, int Warps>
struct BackwardShared {
  bf16 k[16 * Warps * kStride<D>], v[16 * Warps * kStride<D>];  // the block's keys
  bf16 q[kTile * kStride<D>], dout[kTile * kStride<D>];         // the current query tile
  bf16 dsT[16 * Warps * kScoreStride];                          // dSᵀ [key][query] of the current pair
  float lse[kTile], delta[kTile];  // of the current query tile; lse in log2 units
};

// One block per (tile of 16·Warps keys, sequence·head).
template <int D, int Warps>
__global__ void __launch_bounds__(32 * Warps)
    flashBackwardKernel(bf16* dqkv, float* dq, const bf16* dout, const bf16* qkv, const float* lse,
                        const float* delta, int Tlen, int NH, float scale) {
  constexpr int kKeys = 16 * Warps, kThreads = 32 * Warps;
  constexpr int kDimParts =
      Warps / 4;  // dQ: warp w takes query rows 16·(w%4) and a 1/kDimParts of the columns
  static_assert(Warps % 4 == 0 && (D / 8) % (4 * kDimParts) == 0, "dQ splits into chunks of 4 column tiles");
  extern __shared__ __align__(128) unsigned char raw[];
  auto& sh = *reinterpret_cast<BackwardShared<D, Warps>*>(raw);
  const int kb = blockIdx.x;  // the first key tiles meet the most queries: launched first
  const int b = blockIdx.y / NH, h = blockIdx.y % NH;
  const int C = NH * D;
  const size_t ld = static_cast<size_t>(3) * C;
  const bf16* q = qkv + static_cast<size_t>(b) * Tlen * ld + static_cast<size_t>(h) * D;
  const bf16* dO = dout + static_cast<size_t>(b) * Tlen * C + static_cast<size_t>(h) * D;
  const float* lseRow = lse + (static_cast<size_t>(b) * NH + h) * Tlen;
  const float* deltaRow = delta + (static_cast<size_t>(b) * NH + h) * Tlen;
  const int nq = (Tlen + kTile - 1) / kTile;
  const float scaleLog2 = scale * kLog2e;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int mi = lane / 8, mr = lane % 8;
  const int warpKey = kb * kKeys + warp * 16;  // the warp's first key
  const int key0 = warpKey + g;                // this thread's keys: key0 and key0 + 8
  const int qb0 = kb * kKeys / kTile;  // the first query tile with a query at or after a key of the block

  loadTile<D, kKeys, kThreads>(sh.k, q + C, ld, kb * kKeys, Tlen);
  loadTile<D, kKeys, kThreads>(sh.v, q + 2 * C, ld, kb * kKeys, Tlen);
  loadTile<D, kTile, kThreads>(sh.q, q, ld, qb0 * kTile, Tlen);
  loadTile<D, kTile, kThreads>(sh.dout, dO, C, qb0 * kTile, Tlen);
  commitLoads();

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.0f;

  for (int qb = qb0; qb < nq; ++qb) {
    if (threadIdx.x < kTile) {  // the previous tile's readers passed the barrier before its dQ
      const int row = qb * kTile + threadIdx.x;
      sh.lse[threadIdx.x] = row < Tlen ? lseRow[row] * kLog2e : INFINITY;  // padding rows: P = 0
      sh.delta[threadIdx.x] = row < Tlen ? deltaRow[row] : 0.0f;
    }
    waitLoads<0>();
    __syncthreads();

    // A warp whose keys all come after the tile's last query has P = 0: it only clears its rows of dSᵀ.
    if (warpKey <= qb * kTile + kTile - 1) {
      // Pᵀ (the warp's 16 keys × 64 queries) = exp(K Qᵀ·scale − lse), 0 where the query precedes the key.
      const bool masked = qb * kTile < warpKey + 15;
      float p[kTile / 8][4];
      rowProducts<D>(p, sh.k, warp * 16, sh.q, lane);
#pragma unroll
      for (int j = 0; j < kTile / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int query = j * 8 + 2 * t + (e & 1);
          float x = exp2f(p[j][e] * scaleLog2 - sh.lse[query]);
          if (masked && qb * kTile + query < key0 + (e >> 1) * 8) x = 0.0f;
          p[j][e] = x;
        }
      }
      accumulateProduct<D>(dv, p, sh.dout, lane);  // dV += Pᵀ dO

      // dSᵀ = Pᵀ ⊙ (V dOᵀ − delta)
      float ds[kTile / 8][4];
      rowProducts<D>(ds, sh.v, warp * 16, sh.dout, lane);
#pragma unroll
      for (int j = 0; j < kTile / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) ds[j][e] = p[j][e] * (ds[j][e] - sh.delta[j * 8 + 2 * t + (e & 1)]);
      }
      accumulateProduct<D>(dk, ds, sh.q, lane);  // dK += dSᵀ Q (scaled at the end)
#pragma unroll
      for (int j = 0; j < kTile / 8; ++j) {
#pragma unroll
        for (int r = 0; r < 2; ++r)
          *reinterpret_cast<uint32_t*>(&sh.dsT[(warp * 16 + g + 8 * r) * kScoreStride + j * 8 + 2 * t]) =
              pack(ds[j][2 * r], ds[j][2 * r + 1]);
      }
    } else {
#pragma unroll
      for (int j = 0; j < kTile / 8; ++j) {
#pragma unroll
        for (int r = 0; r < 2; ++r)
          *reinterpret_cast<uint32_t*>(&sh.dsT[(warp * 16 + g + 8 * r) * kScoreStride + j * 8 + 2 * t]) = 0u;
      }
    }
    __syncthreads();  // dSᵀ whole; Q, dO, lse and delta free
    if (qb + 1 < nq) {
      loadTile<D, kTile, kThreads>(sh.q, q, ld, (qb + 1) * kTile, Tlen);
      loadTile<D, kTile, kThreads>(sh.dout, dO, C, (qb + 1) * kTile, Tlen);
    }
    commitLoads();

    // dQ (16 queries × D/kDimParts columns) += dS K·scale, in chunks of 4 column tiles; key groups of 16
    // that all come after the warp's last query hold dS = 0 and are skipped.
    const int qw = (warp % 4) * 16;
    const int lastQuery = qb * kTile + qw + 15;
    for (int nc = (warp / 4) * (D / 8 / kDimParts); nc < (warp / 4 + 1) * (D / 8 / kDimParts); nc += 4) {
      float acc[4][4] = {};
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        if (kb * kKeys + kk * 16 > lastQuery) break;
        uint32_t a[4];
        ldmatrix4Trans(a, sh.dsT + (kk * 16 + (mi >> 1) * 8 + mr) * kScoreStride + qw + (mi & 1) * 8);
#pragma unroll
        for (int n = 0; n < 4; n += 2) {
          uint32_t bk[4];
          ldmatrix4Trans(bk, sh.k + (kk * 16 + (mi & 1) * 8 + mr) * kStride<D> + (nc + n + (mi >> 1)) * 8);
          mma(acc[n], a, bk[0], bk[1]);
          mma(acc[n + 1], a, bk[2], bk[3]);
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int query = qb * kTile + qw + g + 8 * r;
        if (query >= Tlen) continue;
        float* dst =
            dq + (static_cast<size_t>(b) * Tlen + query) * C + static_cast<size_t>(h) * D + nc * 8 + 2 * t;
#pragma unroll
        for (int n = 0; n < 4; ++n)
          atomicAdd2(dst + n * 8, make_float2(acc[n][2 * r] * scale, acc[n][2 * r + 1] * scale));
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int key = key0 + 8 * r;
    if (key >= Tlen) continue;
    bf16* row = dqkv + (static_cast<size_t>(b) * Tlen + key) * ld + static_cast<size_t>(h) * D + 2 * t;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      auto* pk = reinterpret_cast<__nv_bfloat162*>(row + C + n * 8);
      auto* pv = reinterpret_cast<__nv_bfloat162*>(row + 2 * C + n * 8);
      const float2 fk = __bfloat1622float2(*pk), fv = __bfloat1622float2(*pv);
      *pk = __floats2bfloat162_rn(fk.x + dk[n][2 * r] * scale, fk.y + dk[n][2 * r + 1] * scale);
      *pv = __floats2bfloat162_rn(fv.x + dv[n][2 * r], fv.y + dv[n][2 * r + 1]);
    }
  }
}

// dqkv's q block += dq [B·T, C] (fp32), two columns a thread.
__global__ void addQueryGradientKernel(bf16* dqkv, const float* dq, size_t rows, int C) {
  const size_t pairs = rows * (C / 2);
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < pairs;
       i += size_t{gridDim.x} * blockDim.x) {
    const size_t row = i / (C / 2), c = (i % (C / 2)) * 2;
    auto* p = reinterpret_cast<__nv_bfloat162*>(dqkv + row * 3 * C + c);
    const float2 f = __bfloat1622float2(*p);
    const float2 d = *reinterpret_cast<const float2*>(dq + row * C + c);
    *p = __floats2bfloat162_rn(f.x + d.x, f.y + d.y);
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Warps a block: forward, 16 query rows each; backward, 16 keys each.
constexpr int kForwardWarps = 4;
constexpr int kBackwardWarps = 8;

template <int D>
void launchForward(bf16* out, float* lse, const bf16* qkv, int B, int Tlen, int NH, cudaStream_t stream) {
  constexpr int kRows = 16 * kForwardWarps;
  const dim3 grid((Tlen + kRows - 1) / kRows, B * NH);
  const float scaleLog2 = kLog2e / std::sqrt(static_cast<float>(D));
  flashForwardKernel<D, kForwardWarps>
      <<<grid, 32 * kForwardWarps, 0, stream>>>(out, lse, qkv, Tlen, NH, scaleLog2);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <int D>
void launchBackward(bf16* dqkv, float* dq, const bf16* dout, const bf16* qkv, const float* lse,
                    const float* delta, int B, int Tlen, int NH, cudaStream_t stream) {
  constexpr int kKeys = 16 * kBackwardWarps;
  const dim3 grid((Tlen + kKeys - 1) / kKeys, B * NH);
  const int bytes = static_cast<int>(sizeof(BackwardShared<D, kBackwardWarps>));
  auto* kernel = flashBackwardKernel<D, kBackwardWarps>;
  MOESCOPE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  kernel<<<grid, 32 * kBackwardWarps, bytes, stream>>>(dqkv, dq, dout, qkv, lse, delta, Tlen, NH,
                                                       1.0f / std::sqrt(static_cast<float>(D)));
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool flashAttentionSupports(int D) {
  return D == 64 || D == 128;
}

bool flashAttentionAvailable() {
  // Asked at every launch: the answer is kept per device (0 not known yet, 1 yes, 2 no).
  static std::array<std::atomic<int>, 64> known{};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  std::atomic<int>* slot = device >= 0 && device < static_cast<int>(known.size()) ? &known[device] : nullptr;
  if (slot && slot->load(std::memory_order_relaxed) != 0) return slot->load(std::memory_order_relaxed) == 1;
  cudaFuncAttributes attributes{};
  bool available = false;
  if (cudaFuncGetAttributes(&attributes, flashForwardKernel<128, kForwardWarps>) == cudaSuccess) {
    available = attributes.ptxVersion >= 80 && attributes.binaryVersion >= 80;
  } else {
    cudaGetLastError();  // no image for this device: not an error to keep
  }
  if (slot) slot->store(available ? 1 : 2, std::memory_order_relaxed);
  return available;
}

size_t flashAttentionWorkspaceBytes(int B, int Tlen, int NH, int D) {
  const size_t rows = static_cast<size_t>(B) * Tlen;
  return align256(rows * NH * D * sizeof(float)) + align256(rows * NH * sizeof(float));
}

void flashAttentionForward(bf16* out, float* lse, const bf16* qkv, int B, int Tlen, int NH, int D,
                           cudaStream_t stream) {
  NvtxRange range("flashAttentionForward");
  MOESCOPE_CUDA_REQUIRE("flashAttentionForward", B > 0 && Tlen > 0 && NH > 0 && flashAttentionSupports(D));
  MOESCOPE_CUDA_REQUIRE("flashAttentionForward", flashAttentionAvailable());
  MOESCOPE_CUDA_REQUIRE("flashAttentionForward", out && lse && aligned16(qkv));
  if (D == 64) {
    launchForward<64>(out, lse, qkv, B, Tlen, NH, stream);
  } else {
    launchForward<128>(out, lse, qkv, B, Tlen, NH, stream);
  }
}

void flashAttentionBackward(bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                            void* workspace, int B, int Tlen, int NH, int D, cudaStream_t stream) {
  NvtxRange range("flashAttentionBackward");
  MOESCOPE_CUDA_REQUIRE("flashAttentionBackward", B > 0 && Tlen > 0 && NH > 0 && flashAttentionSupports(D));
  MOESCOPE_CUDA_REQUIRE("flashAttentionBackward", flashAttentionAvailable());
  MOESCOPE_CUDA_REQUIRE("flashAttentionBackward", dqkv && out && lse && workspace && aligned16(qkv) &&
                                                      aligned16(dout) && aligned16(dqkv));
  const size_t rows = static_cast<size_t>(B) * Tlen;
  const int C = NH * D;
  float* dq = static_cast<float*>(workspace);
  float* delta = reinterpret_cast<float*>(static_cast<char*>(workspace) + align256(rows * C * sizeof(float)));
  MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dq, 0, rows * C * sizeof(float), stream));
  const size_t heads = rows * NH;
  constexpr int kRowsPerBlock = 8;
  rowDotKernel<<<ceilDiv(heads, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(delta, dout, out, B, Tlen,
                                                                                 NH, D);
  MOESCOPE_CUDA_CHECK_LAUNCH();
  if (D == 64) {
    launchBackward<64>(dqkv, dq, dout, qkv, lse, delta, B, Tlen, NH, stream);
  } else {
    launchBackward<128>(dqkv, dq, dout, qkv, lse, delta, B, Tlen, NH, stream);
  }
  const size_t pairs = rows * C / 2;
  addQueryGradientKernel<<<gridStrideBlocks(pairs, 256), 256, 0, stream>>>(dqkv, dq, rows, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace moescope::engine::cuda
