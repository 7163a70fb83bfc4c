#include <cmath>
#include <type_traits>

#include "engine/cuda/attention_cublas.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"

namespace moescope::engine::cuda {

namespace {

template <typename T>
constexpr cudaDataType_t dataType() {
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
}

size_t align256(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}

// Between the row layout X[b,t, h·D + d] (row stride ld) and the head layout Y[b,h,t,d].
template <typename T, bool ToHeads, bool Accumulate>
__global__ void permuteHeadsKernel(T* dst, const T* src, int B, int Tlen, int NH, int D, int ld) {
  const size_t total = static_cast<size_t>(B) * NH * Tlen * D;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x) {
    // i indexes the head layout: ((b·NH + h)·T + t)·D + d
    const int d = static_cast<int>(i % D);
    size_t r = i / D;
    const int t = static_cast<int>(r % Tlen);
    r /= Tlen;
    const int h = static_cast<int>(r % NH);
    const int b = static_cast<int>(r / NH);
    const size_t x = (static_cast<size_t>(b) * Tlen + t) * ld + static_cast<size_t>(h) * D + d;
    if constexpr (ToHeads) {
      dst[i] = src[x];
    } else if constexpr (Accumulate) {
      dst[x] = fromFloat<T>(toFloat(dst[x]) + toFloat(src[i]));
    } else {
      dst[x] = src[i];
    }
  }
}

template <typename T, bool ToHeads, bool Accumulate = false>
void permuteHeads(T* dst, const T* src, int B, int Tlen, int NH, int D, int ld, cudaStream_t stream) {
  const size_t total = static_cast<size_t>(B) * NH * Tlen * D;
  permuteHeadsKernel<T, ToHeads, Accumulate>
      <<<gridStrideBlocks(total, 256), 256, 0, stream>>>(dst, src, B, Tlen, NH, D, ld);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

// The longest row a warp keeps in registers (32 values a lane); longer rows are read again per pass.
constexpr int kRegisterRow = 1024;

// One warp per row q of S [rows, T] (fp32, scaled): P[q,k] = softmax over k <= q, 0 for k > q. A row of
// at most kRegisterRow values is read once, into registers.
template <typename T>
__global__ void causalSoftmaxKernel(T* p, const float* s, size_t rows, int Tlen) {
  const size_t row = blockIdx.x * size_t{blockDim.x / 32} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int q = static_cast<int>(row % Tlen);
  const float* in = s + row * Tlen;
  T* out = p + row * Tlen;
  if (Tlen <= kRegisterRow) {
    float v[kRegisterRow / 32];
    float mx = -INFINITY;
#pragma unroll
    for (int i = 0; i < kRegisterRow / 32; ++i) {
      const int k = lane + 32 * i;
      v[i] = k <= q ? in[k] : -INFINITY;
      mx = fmaxf(mx, v[i]);
    }
    mx = warpMax(mx);
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kRegisterRow / 32; ++i) {
      const int k = lane + 32 * i;
      v[i] = k <= q ? expf(v[i] - mx) : 0.0f;
      sum += v[i];
    }
    const float inv = 1.0f / warpSum(sum);
#pragma unroll
    for (int i = 0; i < kRegisterRow / 32; ++i) {
      const int k = lane + 32 * i;
      if (k < Tlen) out[k] = fromFloat<T>(v[i] * inv);
    }
    return;
  }
  float mx = -INFINITY;
  for (int k = lane; k <= q; k += 32) mx = fmaxf(mx, in[k]);
  mx = warpMax(mx);
  float sum = 0.0f;
  for (int k = lane; k <= q; k += 32) sum += expf(in[k] - mx);
  sum = warpSum(sum);
  const float inv = 1.0f / sum;
  for (int k = lane; k < Tlen; k += 32) out[k] = fromFloat<T>(k <= q ? expf(in[k] - mx) * inv : 0.0f);
}

// One warp per row: dS = P ⊙ (dP − Σ_k dP·P), written over the whole row (0 where masked); rows of at
// most kRegisterRow values read once.
template <typename T>
__global__ void causalSoftmaxBackwardKernel(T* ds, const float* dp, const T* p, size_t rows, int Tlen) {
  const size_t row = blockIdx.x * size_t{blockDim.x / 32} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int q = static_cast<int>(row % Tlen);
  const float* g = dp + row * Tlen;
  const T* pr = p + row * Tlen;
  T* out = ds + row * Tlen;
  if (Tlen <= kRegisterRow) {
    float gv[kRegisterRow / 32], pv[kRegisterRow / 32];
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kRegisterRow / 32; ++i) {
      const int k = lane + 32 * i;
      gv[i] = k <= q ? g[k] : 0.0f;
      pv[i] = k <= q ? toFloat(pr[k]) : 0.0f;
      dot += gv[i] * pv[i];
    }
    dot = warpSum(dot);
#pragma unroll
    for (int i = 0; i < kRegisterRow / 32; ++i) {
      const int k = lane + 32 * i;
      if (k < Tlen) out[k] = fromFloat<T>(pv[i] * (gv[i] - dot));
    }
    return;
  }
  float dot = 0.0f;
  for (int k = lane; k <= q; k += 32) dot += g[k] * toFloat(pr[k]);
  dot = warpSum(dot);
  for (int k = lane; k < Tlen; k += 32) out[k] = fromFloat<T>(k <= q ? toFloat(pr[k]) * (g[k] - dot) : 0.0f);
}

constexpr int kRowsPerBlock = 8;

}  // namespace

size_t attentionCublasWorkspaceBytes(int B, int Tlen, int NH, int D, size_t elementSize) {
  const size_t heads = static_cast<size_t>(B) * NH * Tlen * D;
  const size_t square = static_cast<size_t>(B) * NH * Tlen * Tlen;
  // forward: q, k, v, o per head + S (fp32); backward: q, k, v, dO, dQ, dK, dV + dP (fp32) + dS
  const size_t fwd = 4 * align256(heads * elementSize) + align256(square * 4);
  const size_t bwd =
      7 * align256(heads * elementSize) + align256(square * 4) + align256(square * elementSize);
  return fwd > bwd ? fwd : bwd;
}

template <typename T>
void attentionCublasForward(CublasLt& lt, T* out, T* probs, const T* qkv, void* workspace, int B, int Tlen,
                            int NH, int D, cudaStream_t stream) {
  NvtxRange range("attentionCublasForward");
  MOESCOPE_CUDA_REQUIRE("attentionCublasForward", B > 0 && Tlen > 0 && NH > 0 && D > 0);
  MOESCOPE_CUDA_REQUIRE("attentionCublasForward", out && probs && qkv && workspace);
  const int C = NH * D;
  const size_t heads = static_cast<size_t>(B) * NH * Tlen * D;
  const size_t rows = static_cast<size_t>(B) * NH * Tlen;
  char* w = static_cast<char*>(workspace);
  T* q = reinterpret_cast<T*>(w);
  T* k = reinterpret_cast<T*>(w + align256(heads * sizeof(T)));
  T* v = reinterpret_cast<T*>(w + 2 * align256(heads * sizeof(T)));
  T* o = reinterpret_cast<T*>(w + 3 * align256(heads * sizeof(T)));
  float* s = reinterpret_cast<float*>(w + 4 * align256(heads * sizeof(T)));
  permuteHeads<T, true>(q, qkv, B, Tlen, NH, D, 3 * C, stream);
  permuteHeads<T, true>(k, qkv + C, B, Tlen, NH, D, 3 * C, stream);
  permuteHeads<T, true>(v, qkv + 2 * C, B, Tlen, NH, D, 3 * C, stream);
  const int batch = B * NH;
  const int64_t hd = static_cast<int64_t>(Tlen) * D, tt = static_cast<int64_t>(Tlen) * Tlen;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // Sᵀ (col-major [Tk, Tq]) = Kᵀᵀ Q: row-major S [Tq, Tk].
  matmulStridedBatched(lt, dataType<T>(), CUDA_R_32F, CUBLAS_OP_T, CUBLAS_OP_N, Tlen, Tlen, D, scale, k, D,
                       hd, q, D, hd, 0.0f, s, Tlen, tt, batch, stream);
  causalSoftmaxKernel<T>
      <<<ceilDiv(rows, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(probs, s, rows, Tlen);
  MOESCOPE_CUDA_CHECK_LAUNCH();
  // Oᵀ (col-major [D, Tq]) = Vᵀ Pᵀ.
  matmulStridedBatched(lt, dataType<T>(), dataType<T>(), CUBLAS_OP_N, CUBLAS_OP_N, D, Tlen, Tlen, 1.0f, v, D,
                       hd, probs, Tlen, tt, 0.0f, o, D, hd, batch, stream);
  permuteHeads<T, false>(out, o, B, Tlen, NH, D, C, stream);
}

template <typename T>
void attentionCublasBackward(CublasLt& lt, T* dqkv, const T* dout, const T* qkv, const T* probs,
                             void* workspace, int B, int Tlen, int NH, int D, cudaStream_t stream) {
  NvtxRange range("attentionCublasBackward");
  MOESCOPE_CUDA_REQUIRE("attentionCublasBackward", B > 0 && Tlen > 0 && NH > 0 && D > 0);
  MOESCOPE_CUDA_REQUIRE("attentionCublasBackward", dqkv && dout && qkv && probs && workspace);
  const int C = NH * D;
  const size_t heads = static_cast<size_t>(B) * NH * Tlen * D;
  const size_t square = static_cast<size_t>(B) * NH * Tlen * Tlen;
  const size_t rows = static_cast<size_t>(B) * NH * Tlen;
  char* w = static_cast<char*>(workspace);
  const size_t hb = align256(heads * sizeof(T));
  T* q = reinterpret_cast<T*>(w);
  T* k = reinterpret_cast<T*>(w + hb);
  T* v = reinterpret_cast<T*>(w + 2 * hb);
  T* dout_h = reinterpret_cast<T*>(w + 3 * hb);
  T* dq = reinterpret_cast<T*>(w + 4 * hb);
  T* dk = reinterpret_cast<T*>(w + 5 * hb);
  T* dv = reinterpret_cast<T*>(w + 6 * hb);
  float* dp = reinterpret_cast<float*>(w + 7 * hb);
  T* ds = reinterpret_cast<T*>(w + 7 * hb + align256(square * 4));
  permuteHeads<T, true>(q, qkv, B, Tlen, NH, D, 3 * C, stream);
  permuteHeads<T, true>(k, qkv + C, B, Tlen, NH, D, 3 * C, stream);
  permuteHeads<T, true>(v, qkv + 2 * C, B, Tlen, NH, D, 3 * C, stream);
  permuteHeads<T, true>(dout_h, dout, B, Tlen, NH, D, C, stream);
  const int batch = B * NH;
  const int64_t hd = static_cast<int64_t>(Tlen) * D, tt = static_cast<int64_t>(Tlen) * Tlen;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const cudaDataType_t t = dataType<T>();
  // dVᵀ (col [D, Tk]) = dOᵀ · P (P row-major [Tq, Tk] read transposed).
  matmulStridedBatched(lt, t, t, CUBLAS_OP_N, CUBLAS_OP_T, D, Tlen, Tlen, 1.0f, dout_h, D, hd, probs, Tlen,
                       tt, 0.0f, dv, D, hd, batch, stream);
  // dPᵀ (col [Tk, Tq]) = Vᵀᵀ · dOᵀ: row-major dP [Tq, Tk], fp32.
  matmulStridedBatched(lt, t, CUDA_R_32F, CUBLAS_OP_T, CUBLAS_OP_N, Tlen, Tlen, D, 1.0f, v, D, hd, dout_h, D,
                       hd, 0.0f, dp, Tlen, tt, batch, stream);
  causalSoftmaxBackwardKernel<T>
      <<<ceilDiv(rows, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(ds, dp, probs, rows, Tlen);
  MOESCOPE_CUDA_CHECK_LAUNCH();
  // dQᵀ (col [D, Tq]) = Kᵀ · dSᵀ · scale.
  matmulStridedBatched(lt, t, t, CUBLAS_OP_N, CUBLAS_OP_N, D, Tlen, Tlen, scale, k, D, hd, ds, Tlen, tt, 0.0f,
                       dq, D, hd, batch, stream);
  // dKᵀ (col [D, Tk]) = Qᵀ · dS · scale (dS row-major [Tq, Tk] read transposed).
  matmulStridedBatched(lt, t, t, CUBLAS_OP_N, CUBLAS_OP_T, D, Tlen, Tlen, scale, q, D, hd, ds, Tlen, tt, 0.0f,
                       dk, D, hd, batch, stream);
  permuteHeads<T, false, true>(dqkv, dq, B, Tlen, NH, D, 3 * C, stream);
  permuteHeads<T, false, true>(dqkv + C, dk, B, Tlen, NH, D, 3 * C, stream);
  permuteHeads<T, false, true>(dqkv + 2 * C, dv, B, Tlen, NH, D, 3 * C, stream);
}

template void attentionCublasForward<float>(CublasLt&, float*, float*, const float*, void*, int, int, int,
                                            int, cudaStream_t);
template void attentionCublasForward<__nv_bfloat16>(CublasLt&, __nv_bfloat16*, __nv_bfloat16*,
                                                    const __nv_bfloat16*, void*, int, int, int, int,
                                                    cudaStream_t);
template void attentionCublasBackward<float>(CublasLt&, float*, const float*, const float*, const float*,
                                             void*, int, int, int, int, cudaStream_t);
template void attentionCublasBackward<__nv_bfloat16>(CublasLt&, __nv_bfloat16*, const __nv_bfloat16*,
                                                     const __nv_bfloat16*, const __nv_bfloat16*, void*, int,
                                                     int, int, int, cudaStream_t);

}  // namespace moescope::engine::cuda
