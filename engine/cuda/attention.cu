// Warp-per-row attention with online softmax. A block holds kRows consecutive rows (queries in the
// forward and dQ kernels, keys in the dK/dV kernel) of one (sequence, head) and walks the other side in
// tiles of 32 staged in shared memory as float; lane l handles the tile's l-th key (or query) for the
// scores, and head channels d = l, l+32, ... for the accumulators. Rows of 32 floats are padded by one so
// that lanes reading different rows hit different banks.
#include "engine/cuda/attention.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/launch_config.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kRows = 8;  // warps per block, one row each
constexpr int kThreads = kRows * 32;
constexpr int kTile = 32;

struct Geometry {
  int Tlen, NH, D;
  float scale;                                                               // 1/sqrt(D)
  __device__ size_t row() const { return static_cast<size_t>(3) * NH * D; }  // qkv row length
  // element d of block (0 q, 1 k, 2 v) of head h at position t of sequence b
  __device__ size_t qkvIndex(int b, int t, int block, int h) const {
    return (static_cast<size_t>(b) * Tlen + t) * row() + static_cast<size_t>(block) * NH * D +
           static_cast<size_t>(h) * D;
  }
  __device__ size_t outIndex(int b, int t, int h) const {
    return (static_cast<size_t>(b) * Tlen + t) * NH * D + static_cast<size_t>(h) * D;
  }
  __device__ size_t lseIndex(int b, int h, int t) const {
    return (static_cast<size_t>(b) * NH + h) * Tlen + t;
  }
};

// Σ a[d]·b[d] over d < D, in four independent partial sums (shorter dependency chains).
__device__ __forceinline__ float dotRow(const float* a, const float* b, int D) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  int d = 0;
  for (; d + 4 <= D; d += 4) {
    s0 += a[d] * b[d];
    s1 += a[d + 1] * b[d + 1];
    s2 += a[d + 2] * b[d + 2];
    s3 += a[d + 3] * b[d + 3];
  }
  for (; d < D; ++d) s0 += a[d] * b[d];
  return (s0 + s1) + (s2 + s3);
}

// Stages rows first..first+31 of one block of qkv (or of dout when block < 0: out-shaped) into
// dst[32][stride] as float; rows past the sequence are zero.
template <typename T>
__device__ void stageTile(float* dst, int stride, const T* src, const Geometry& g, int b, int h, int block,
                          int first) {
  for (int idx = threadIdx.x; idx < kTile * g.D; idx += blockDim.x) {
    const int r = idx / g.D;
    const int d = idx % g.D;
    const int t = first + r;
    float v = 0.0f;
    if (t < g.Tlen) v = toFloat(src[(block >= 0 ? g.qkvIndex(b, t, block, h) : g.outIndex(b, t, h)) + d]);
    dst[r * stride + d] = v;
  }
}

template <typename T, int kPerLane>
__global__ void forwardKernel(T* out, float* lse, const T* qkv, Geometry g) {
  extern __shared__ float shared[];
  const int D = g.D;
  float* Ks = shared;                // [32][D+1]
  float* Vs = Ks + kTile * (D + 1);  // [32][D]
  float* Qs = Vs + kTile * D;        // [kRows][D]
  const int b = blockIdx.z, h = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int firstRow = blockIdx.x * kRows;
  const int i = firstRow + warp;  // this warp's query
  const int lastRow = min(g.Tlen - 1, firstRow + kRows - 1);
  float* q = Qs + warp * D;
  for (int d = lane; d < D; d += 32) q[d] = i < g.Tlen ? toFloat(qkv[g.qkvIndex(b, i, 0, h) + d]) : 0.0f;

  float o[kPerLane];
  for (int t = 0; t < kPerLane; ++t) o[t] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  for (int j0 = 0; j0 <= lastRow; j0 += kTile) {
    __syncthreads();  // the previous tile is no longer read
    stageTile(Ks, D + 1, qkv, g, b, h, 1, j0);
    stageTile(Vs, D, qkv, g, b, h, 2, j0);
    __syncthreads();
    if (i > lastRow || j0 > i) continue;  // warp-uniform
    const int j = j0 + lane;
    float s = -INFINITY;
    if (j <= i) {
      const float* k = Ks + lane * (D + 1);
      s = dotRow(q, k, D) * g.scale;
    }
    const float newM = fmaxf(m, warpMax(s));  // finite: key j0 <= i is in the tile
    const float alpha = expf(m - newM);       // 0 on the first tile (m = −inf)
    const float p = j <= i ? expf(s - newM) : 0.0f;
    l = l * alpha + warpSum(p);
    m = newM;
    for (int t = 0; t < kPerLane; ++t) o[t] *= alpha;
    const int count = min(kTile, i - j0 + 1);
    for (int jj = 0; jj < count; ++jj) {
      const float pj = __shfl_sync(0xffffffffu, p, jj);
      const float* v = Vs + jj * D;
      for (int t = 0; t < kPerLane; ++t) {
        const int d = lane + 32 * t;
        if (d < D) o[t] += pj * v[d];
      }
    }
  }
  if (i > lastRow) return;
  const float inv = 1.0f / l;
  T* dst = out + g.outIndex(b, i, h);
  for (int t = 0; t < kPerLane; ++t) {
    const int d = lane + 32 * t;
    if (d < D) dst[d] = fromFloat<T>(o[t] * inv);
  }
  if (lane == 0) lse[g.lseIndex(b, h, i)] = m + logf(l);
}

// delta[b,h,i] = Σ_d dout[b,i,h,d] · out[b,i,h,d]: the softmax backward's row term.
template <typename T>
__global__ void deltaKernel(float* delta, const T* dout, const T* out, Geometry g, int rows) {
  const int lane = threadIdx.x % 32;
  const int r = blockIdx.x * kRows + threadIdx.x / 32;  // r = (b·NH + h)·T + i
  if (r >= rows) return;
  const int i = r % g.Tlen;
  const int h = (r / g.Tlen) % g.NH;
  const int b = r / (g.Tlen * g.NH);
  const size_t base = g.outIndex(b, i, h);
  float acc = 0.0f;
  for (int d = lane; d < g.D; d += 32) acc += toFloat(dout[base + d]) * toFloat(out[base + d]);
  acc = warpSum(acc);
  if (lane == 0) delta[r] = acc;
}

// dq_i += scale · Σ_{j<=i} p_ij (dout_i·v_j − delta_i) k_j, one warp per query row.
template <typename T, int kPerLane>
__global__ void dqKernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta,
                         Geometry g) {
  extern __shared__ float shared[];
  const int D = g.D;
  float* Ks = shared;                // [32][D+1]
  float* Vs = Ks + kTile * (D + 1);  // [32][D+1]
  float* Qs = Vs + kTile * (D + 1);  // [kRows][D]
  float* dOs = Qs + kRows * D;       // [kRows][D]
  const int b = blockIdx.z, h = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int firstRow = blockIdx.x * kRows;
  const int i = firstRow + warp;
  const int lastRow = min(g.Tlen - 1, firstRow + kRows - 1);
  float* q = Qs + warp * D;
  float* dO = dOs + warp * D;
  for (int d = lane; d < D; d += 32) {
    q[d] = i < g.Tlen ? toFloat(qkv[g.qkvIndex(b, i, 0, h) + d]) : 0.0f;
    dO[d] = i < g.Tlen ? toFloat(dout[g.outIndex(b, i, h) + d]) : 0.0f;
  }
  const float rowLse = i <= lastRow ? lse[g.lseIndex(b, h, i)] : 0.0f;
  const float rowDelta = i <= lastRow ? delta[g.lseIndex(b, h, i)] : 0.0f;
  float dq[kPerLane];
  for (int t = 0; t < kPerLane; ++t) dq[t] = 0.0f;
  for (int j0 = 0; j0 <= lastRow; j0 += kTile) {
    __syncthreads();
    stageTile(Ks, D + 1, qkv, g, b, h, 1, j0);
    stageTile(Vs, D + 1, qkv, g, b, h, 2, j0);
    __syncthreads();
    if (i > lastRow || j0 > i) continue;
    const int j = j0 + lane;
    float ds = 0.0f;
    if (j <= i) {
      const float* k = Ks + lane * (D + 1);
      const float* v = Vs + lane * (D + 1);
      const float s = dotRow(q, k, D);
      const float dp = dotRow(dO, v, D);
      const float p = expf(s * g.scale - rowLse);
      ds = p * (dp - rowDelta);
    }
    const int count = min(kTile, i - j0 + 1);
    for (int jj = 0; jj < count; ++jj) {
      const float dsj = __shfl_sync(0xffffffffu, ds, jj);
      const float* k = Ks + jj * (D + 1);
      for (int t = 0; t < kPerLane; ++t) {
        const int d = lane + 32 * t;
        if (d < D) dq[t] += dsj * k[d];
      }
    }
  }
  if (i > lastRow) return;
  T* dst = dqkv + g.qkvIndex(b, i, 0, h);
  for (int t = 0; t < kPerLane; ++t) {
    const int d = lane + 32 * t;
    if (d < D) dst[d] = fromFloat<T>(toFloat(dst[d]) + g.scale * dq[t]);
  }
}

// dk_j += scale · Σ_{i>=j} ds_ij q_i and dv_j += Σ_{i>=j} p_ij dout_i, one warp per key row.
template <typename T, int kPerLane>
__global__ void dkvKernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta,
                          Geometry g) {
  extern __shared__ float shared[];
  const int D = g.D;
  float* Qs = shared;                 // [32][D+1]
  float* dOs = Qs + kTile * (D + 1);  // [32][D+1]
  float* Ls = dOs + kTile * (D + 1);  // [32] lse
  float* Ds = Ls + kTile;             // [32] delta
  float* Krow = Ds + kTile;           // [kRows][D]
  float* Vrow = Krow + kRows * D;     // [kRows][D]
  const int b = blockIdx.z, h = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int firstRow = blockIdx.x * kRows;
  const int j = firstRow + warp;  // this warp's key
  const int lastRow = min(g.Tlen - 1, firstRow + kRows - 1);
  float* k = Krow + warp * D;
  float* v = Vrow + warp * D;
  for (int d = lane; d < D; d += 32) {
    k[d] = j < g.Tlen ? toFloat(qkv[g.qkvIndex(b, j, 1, h) + d]) : 0.0f;
    v[d] = j < g.Tlen ? toFloat(qkv[g.qkvIndex(b, j, 2, h) + d]) : 0.0f;
  }
  float dk[kPerLane], dv[kPerLane];
  for (int t = 0; t < kPerLane; ++t) dk[t] = dv[t] = 0.0f;
  for (int i0 = firstRow; i0 < g.Tlen; i0 += kTile) {
    __syncthreads();
    stageTile(Qs, D + 1, qkv, g, b, h, 0, i0);
    stageTile(dOs, D + 1, dout, g, b, h, -1, i0);
    if (threadIdx.x < kTile) {
      const int ii = i0 + static_cast<int>(threadIdx.x);
      Ls[threadIdx.x] = ii < g.Tlen ? lse[g.lseIndex(b, h, ii)] : 0.0f;
      Ds[threadIdx.x] = ii < g.Tlen ? delta[g.lseIndex(b, h, ii)] : 0.0f;
    }
    __syncthreads();
    if (j > lastRow) continue;
    const int i = i0 + lane;
    float p = 0.0f, ds = 0.0f;
    if (i >= j && i < g.Tlen) {
      const float* q = Qs + lane * (D + 1);
      const float* dO = dOs + lane * (D + 1);
      const float s = dotRow(q, k, D);
      const float dp = dotRow(dO, v, D);
      p = expf(s * g.scale - Ls[lane]);
      ds = p * (dp - Ds[lane]);
    }
    const int count = min(kTile, g.Tlen - i0);
    for (int ii = 0; ii < count; ++ii) {
      const float pi = __shfl_sync(0xffffffffu, p, ii);
      const float dsi = __shfl_sync(0xffffffffu, ds, ii);
      const float* q = Qs + ii * (D + 1);
      const float* dO = dOs + ii * (D + 1);
      for (int t = 0; t < kPerLane; ++t) {
        const int d = lane + 32 * t;
        if (d < D) {
          dv[t] += pi * dO[d];
          dk[t] += dsi * q[d];
        }
      }
    }
  }
  if (j > lastRow) return;
  T* dK = dqkv + g.qkvIndex(b, j, 1, h);
  T* dV = dqkv + g.qkvIndex(b, j, 2, h);
  for (int t = 0; t < kPerLane; ++t) {
    const int d = lane + 32 * t;
    if (d < D) {
      dK[d] = fromFloat<T>(toFloat(dK[d]) + g.scale * dk[t]);
      dV[d] = fromFloat<T>(toFloat(dV[d]) + dv[t]);
    }
  }
}

// Opts the kernel in to `bytes` of dynamic shared memory when that is more than the default 48 KiB.
template <typename Kernel>
void prepareSharedMemory(Kernel kernel, size_t bytes, const char* launcher) {
  if (bytes > static_cast<size_t>(maxSharedMemoryPerBlockOptin())) {
    throw CudaError(std::string(launcher) + ": head size needs " + std::to_string(bytes) +
                    " bytes of shared memory per block, more than the device offers");
  }
  if (bytes > 48 * 1024) {
    MOESCOPE_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  }
}

template <typename T, int P>
void launchForward(T* out, float* lse, const T* qkv, const Geometry& g, dim3 grid, size_t smem,
                   cudaStream_t stream) {
  prepareSharedMemory(forwardKernel<T, P>, smem, "attentionForward");
  forwardKernel<T, P><<<grid, kThreads, smem, stream>>>(out, lse, qkv, g);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T, int P>
void launchBackward(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta,
                    const Geometry& g, dim3 grid, size_t dqSmem, size_t dkvSmem, cudaStream_t stream) {
  prepareSharedMemory(dqKernel<T, P>, dqSmem, "attentionBackward");
  dqKernel<T, P><<<grid, kThreads, dqSmem, stream>>>(dqkv, dout, qkv, lse, delta, g);
  MOESCOPE_CUDA_CHECK_LAUNCH();
  prepareSharedMemory(dkvKernel<T, P>, dkvSmem, "attentionBackward");
  dkvKernel<T, P><<<grid, kThreads, dkvSmem, stream>>>(dqkv, dout, qkv, lse, delta, g);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

// The accumulators per lane: the smallest of 1, 2, 4, 8 with 32 of them per warp covering D.
int perLane(int D) {
  return D <= 32 ? 1 : D <= 64 ? 2 : D <= 128 ? 4 : 8;
}

void checkShape(const char* launcher, int B, int Tlen, int NH, int D) {
  MOESCOPE_CUDA_REQUIRE(launcher, B >= 0 && Tlen > 0 && NH > 0 && D > 0 && D <= kAttentionMaxHeadSize);
  MOESCOPE_CUDA_REQUIRE(launcher, NH <= 65535 && B <= 65535);
}

}  // namespace

template <typename T>
void attentionForward(T* out, float* lse, const T* qkv, int B, int Tlen, int NH, int D, cudaStream_t stream) {
  NvtxRange range("attentionForward");
  checkShape("attentionForward", B, Tlen, NH, D);
  if (B == 0) return;
  MOESCOPE_CUDA_REQUIRE("attentionForward", out && lse && qkv);
  const Geometry g{Tlen, NH, D, static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)))};
  const size_t smem = (static_cast<size_t>(kTile) * (D + 1) + kTile * D + kRows * D) * sizeof(float);
  const dim3 grid(ceilDiv(Tlen, kRows), NH, B);
  switch (perLane(D)) {
    case 1:
      launchForward<T, 1>(out, lse, qkv, g, grid, smem, stream);
      break;
    case 2:
      launchForward<T, 2>(out, lse, qkv, g, grid, smem, stream);
      break;
    case 4:
      launchForward<T, 4>(out, lse, qkv, g, grid, smem, stream);
      break;
    default:
      launchForward<T, 8>(out, lse, qkv, g, grid, smem, stream);
      break;
  }
}

template <typename T>
void attentionBackward(T* dqkv, const T* dout, const T* qkv, const T* out, const float* lse, float* workspace,
                       int B, int Tlen, int NH, int D, cudaStream_t stream) {
  NvtxRange range("attentionBackward");
  checkShape("attentionBackward", B, Tlen, NH, D);
  if (B == 0) return;
  MOESCOPE_CUDA_REQUIRE("attentionBackward", dqkv && dout && qkv && out && lse && workspace);
  const Geometry g{Tlen, NH, D, static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)))};
  const long long rows = static_cast<long long>(B) * NH * Tlen;
  MOESCOPE_CUDA_REQUIRE("attentionBackward", rows < (1ll << 31));
  deltaKernel<T><<<ceilDiv(static_cast<size_t>(rows), kRows), kThreads, 0, stream>>>(workspace, dout, out, g,
                                                                                     static_cast<int>(rows));
  MOESCOPE_CUDA_CHECK_LAUNCH();

  const dim3 grid(ceilDiv(Tlen, kRows), NH, B);
  const size_t dqSmem = (2 * static_cast<size_t>(kTile) * (D + 1) + 2 * kRows * D) * sizeof(float);
  const size_t dkvSmem =
      (2 * static_cast<size_t>(kTile) * (D + 1) + 2 * kTile + 2 * kRows * D) * sizeof(float);
  switch (perLane(D)) {
    case 1:
      launchBackward<T, 1>(dqkv, dout, qkv, lse, workspace, g, grid, dqSmem, dkvSmem, stream);
      break;
    case 2:
      launchBackward<T, 2>(dqkv, dout, qkv, lse, workspace, g, grid, dqSmem, dkvSmem, stream);
      break;
    case 4:
      launchBackward<T, 4>(dqkv, dout, qkv, lse, workspace, g, grid, dqSmem, dkvSmem, stream);
      break;
    default:
      launchBackward<T, 8>(dqkv, dout, qkv, lse, workspace, g, grid, dqSmem, dkvSmem, stream);
      break;
  }
}

template void attentionForward<float>(float*, float*, const float*, int, int, int, int, cudaStream_t);
template void attentionForward<__nv_bfloat16>(__nv_bfloat16*, float*, const __nv_bfloat16*, int, int, int,
                                              int, cudaStream_t);
template void attentionBackward<float>(float*, const float*, const float*, const float*, const float*, float*,
                                       int, int, int, int, cudaStream_t);
template void attentionBackward<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                               const __nv_bfloat16*, const float*, float*, int, int, int, int,
                                               cudaStream_t);

}  // namespace moescope::engine::cuda
