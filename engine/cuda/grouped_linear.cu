#include <algorithm>
#include <string>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/gelu.cuh"
#include "engine/cuda/grouped_linear.h"
#include "engine/cuda/matmul.h"

namespace moescope::engine::cuda {

struct GroupedLinear::Product {
  cublasOperation_t opA = CUBLAS_OP_N, opB = CUBLAS_OP_N;
  cudaDataType_t abType = CUDA_R_32F, cType = CUDA_R_32F;
  float beta = 0.0f;
  std::vector<int> m, n, k, lda, ldb, ldc;
  std::vector<const void*> A, B;
  std::vector<void*> C;
  size_t size() const { return m.size(); }
  void add(int mg, int ng, int kg, const void* a, int la, const void* b, int lb, void* c, int lc) {
    m.push_back(mg);
    n.push_back(ng);
    k.push_back(kg);
    A.push_back(a);
    lda.push_back(la);
    B.push_back(b);
    ldb.push_back(lb);
    C.push_back(c);
    ldc.push_back(lc);
  }
};

namespace {

constexpr int kMax = GroupedLinear::kMaxGroups;
constexpr int kThreads = 256;

// The groups' operand addresses, passed by value (3 KiB, within a kernel's 4 KiB of arguments) and
// stored where cuBLAS reads them: no host buffer has to outlive the launch.
struct PointerTable {
  const void* a[kMax];
  const void* b[kMax];
  void* c[kMax];
  int count;
};

__global__ void storePointersKernel(PointerTable t, const void** a, const void** b, void** c) {
  const int i = threadIdx.x;
  if (i < t.count) {
    a[i] = t.a[i];
    b[i] = t.b[i];
    c[i] = t.c[i];
  }
}

// Per group: its bias (or bias gradient) and its rows.
template <typename P>
struct GroupTable {
  P bias[kMax];
  int rowBegin[kMax + 1];
  int count;
};

__device__ __forceinline__ int groupOf(const int* rowBegin, int count, int row) {
  int lo = 0, hi = count;  // the last g with rowBegin[g] <= row
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (rowBegin[mid] <= row) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// y[r, c] += b_g[c] for the rows of each group; with Gelu, pre = that sum (stored) and y = gelu(pre).
template <typename T, bool Gelu>
__global__ void groupedBiasKernel(T* y, T* pre, GroupTable<const T*> t, int out) {
  const size_t total = static_cast<size_t>(t.rowBegin[t.count] - t.rowBegin[0]) * out;
  const size_t first = static_cast<size_t>(t.rowBegin[0]) * out;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x) {
    const size_t e = first + i;
    const int row = static_cast<int>(e / out), c = static_cast<int>(e % out);
    const T* b = t.bias[groupOf(t.rowBegin, t.count, row)];
    if constexpr (Gelu) {
      const float v = toFloat(fromFloat<T>(toFloat(pre[e]) + (b ? toFloat(b[c]) : 0.0f)));
      pre[e] = fromFloat<T>(v);
      y[e] = fromFloat<T>(gelu(v));
    } else {
      y[e] = fromFloat<T>(toFloat(y[e]) + toFloat(b[c]));
    }
  }
}

// db_g[c] += Σ over a part of group g's rows of dy[r, c]: block (x, g, part) takes 32 columns of up to
// kPartRows rows, 8 rows at a time, and adds its sums with one atomic a column.
constexpr int kPartRows = 512;

template <typename T>
__global__ void groupedBiasGradKernel(GroupTable<float*> t, const T* dy, int out) {
  __shared__ float partial[8][33];
  const int g = blockIdx.y;
  const int col = blockIdx.x * 32 + threadIdx.x;
  const int r0 = t.rowBegin[g] + blockIdx.z * kPartRows;
  const int r1 = min(t.rowBegin[g + 1], r0 + kPartRows);
  if (r0 >= r1) return;  // the whole block leaves together
  float acc = 0.0f;
  if (col < out) {
    for (int r = r0 + threadIdx.y; r < r1; r += 8) acc += toFloat(dy[static_cast<size_t>(r) * out + col]);
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < out) {
    float sum = 0.0f;
    for (int i = 0; i < 8; ++i) sum += partial[i][threadIdx.x];
    atomicAdd(&t.bias[g][col], sum);
  }
}

// Groups g0..g1-1 of rowBegin into a table, bias pointers from p.
template <typename P>
GroupTable<P> table(const std::vector<P>& p, const std::vector<int>& rowBegin, size_t g0, size_t g1) {
  GroupTable<P> t{};
  t.count = static_cast<int>(g1 - g0);
  for (size_t g = g0; g < g1; ++g) {
    t.bias[g - g0] = p.empty() ? nullptr : p[g];
    t.rowBegin[g - g0] = rowBegin[g];
  }
  t.rowBegin[g1 - g0] = rowBegin[g1];
  return t;
}

template <typename T>
void checkGroups(const char* launcher, const std::vector<int>& rowBegin, size_t groups) {
  MOESCOPE_CUDA_REQUIRE(launcher, groups >= 1 && rowBegin.size() == groups + 1 && rowBegin.front() == 0);
  for (size_t g = 0; g < groups; ++g) MOESCOPE_CUDA_REQUIRE(launcher, rowBegin[g] <= rowBegin[g + 1]);
}

}  // namespace

GroupedLinear::GroupedLinear(CublasLt& lt) : lt_(lt) {
  MOESCOPE_CUBLAS_CHECK(cublasCreate(&handle_));
  // cuBLAS's own workspace on this stream, sized as cuBLASLt's (shared: the products never overlap).
  MOESCOPE_CUBLAS_CHECK(cublasSetWorkspace(handle_, lt.workspace(), lt.workspaceBytes()));
  try {
    pointers_ = deviceAlloc(3 * kMax * sizeof(void*));
  } catch (...) {
    cublasDestroy(handle_);
    throw;
  }
}

GroupedLinear::~GroupedLinear() {
  deviceFree(pointers_);
  if (handle_) cublasDestroy(handle_);
}

void GroupedLinear::run(const Product& p, cudaStream_t stream) {
  const int G = static_cast<int>(p.size());
  if (G == 0) return;
  const bool mixed = p.abType != p.cType;
  if (G <= kMax && !(mixed && refusedMixed_)) {
    PointerTable t{};
    t.count = G;
    for (int g = 0; g < G; ++g) {
      t.a[g] = p.A[g];
      t.b[g] = p.B[g];
      t.c[g] = p.C[g];
    }
    auto** base = static_cast<void**>(pointers_);
    const void** a = const_cast<const void**>(base);
    const void** b = const_cast<const void**>(base + kMax);
    void** c = base + 2 * kMax;
    storePointersKernel<<<1, kMax, 0, stream>>>(t, a, b, c);
    MOESCOPE_CUDA_CHECK_LAUNCH();
    MOESCOPE_CUBLAS_CHECK(cublasSetStream(handle_, stream));
    const std::vector<cublasOperation_t> opA(G, p.opA), opB(G, p.opB);
    const std::vector<float> alpha(G, 1.0f), beta(G, p.beta);
    const std::vector<int> sizes(G, 1);
    const cublasStatus_t status = cublasGemmGroupedBatchedEx(
        handle_, opA.data(), opB.data(), p.m.data(), p.n.data(), p.k.data(), alpha.data(), a, p.abType,
        p.lda.data(), b, p.abType, p.ldb.data(), beta.data(), c, p.cType, p.ldc.data(), G, sizes.data(),
        CUBLAS_COMPUTE_32F);
    if (status == CUBLAS_STATUS_SUCCESS) {
      ++grouped_;
      return;
    }
    if (!mixed || (status != CUBLAS_STATUS_NOT_SUPPORTED && status != CUBLAS_STATUS_INVALID_VALUE)) {
      MOESCOPE_CUBLAS_CHECK(status);
    }
    refusedMixed_ = true;  // bf16 products into fp32: one cuBLASLt launch per group from now on
  }
  for (int g = 0; g < G; ++g) {
    matmul(lt_, p.abType, p.cType, p.opA, p.opB, p.m[g], p.n[g], p.k[g], p.A[g], p.lda[g], p.B[g], p.ldb[g],
           p.C[g], p.ldc[g], p.beta, MatmulEpilogue{}, stream);
  }
  ++looped_;
}

template <typename T>
void GroupedLinear::forward(T* y, const T* x, const std::vector<const T*>& w, const std::vector<const T*>& b,
                            const std::vector<int>& rowBegin, int in, int out, cudaStream_t stream, T* pre) {
  NvtxRange range("groupedLinearForward");
  const size_t G = w.size();
  checkGroups<T>("GroupedLinear::forward", rowBegin, G);
  MOESCOPE_CUDA_REQUIRE("GroupedLinear::forward", in > 0 && out > 0 && (b.empty() || b.size() == G));
  if (rowBegin.back() == 0) return;
  MOESCOPE_CUDA_REQUIRE("GroupedLinear::forward", y && x && pre != y);
  T* product = pre ? pre : y;
  // y_g col-major [out, m_g] = W_g(col-major [in,out])ᵀ · x_g(col-major [in, m_g])
  Product p;
  p.opA = CUBLAS_OP_T;
  p.abType = p.cType = dataTypeOf<T>();
  for (size_t g = 0; g < G; ++g) {
    const int m = rowBegin[g + 1] - rowBegin[g];
    if (m == 0) continue;
    const size_t r = static_cast<size_t>(rowBegin[g]);
    p.add(out, m, in, w[g], in, x + r * in, in, product + r * out, out);
  }
  run(p, stream);
  if (b.empty() && !pre) return;
  for (size_t g0 = 0; g0 < G; g0 += kMax) {
    const size_t g1 = std::min(G, g0 + kMax);
    const auto t = table(b, rowBegin, g0, g1);
    const size_t total = static_cast<size_t>(rowBegin[g1] - rowBegin[g0]) * out;
    if (total == 0) continue;
    if (pre) {
      groupedBiasKernel<T, true><<<gridStrideBlocks(total, kThreads), kThreads, 0, stream>>>(y, pre, t, out);
    } else {
      groupedBiasKernel<T, false>
          <<<gridStrideBlocks(total, kThreads), kThreads, 0, stream>>>(y, nullptr, t, out);
    }
    MOESCOPE_CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void GroupedLinear::backward(T* dx, const std::vector<float*>& dw, const std::vector<float*>& db, const T* dy,
                             const T* x, const std::vector<const T*>& w, const std::vector<int>& rowBegin,
                             int in, int out, cudaStream_t stream) {
  NvtxRange range("groupedLinearBackward");
  const size_t G = w.size();
  checkGroups<T>("GroupedLinear::backward", rowBegin, G);
  MOESCOPE_CUDA_REQUIRE("GroupedLinear::backward", in > 0 && out > 0 && (dw.empty() || dw.size() == G) &&
                                                       (db.empty() || db.size() == G));
  if (rowBegin.back() == 0) return;
  MOESCOPE_CUDA_REQUIRE("GroupedLinear::backward",
                        dy != nullptr && (!dx || w.size() == G) && (dw.empty() || x));
  if (dx) {
    // dx_g col-major [in, m_g] += W_g(col-major [in,out]) · dy_g(col-major [out, m_g])
    Product p;
    p.abType = p.cType = dataTypeOf<T>();
    p.beta = 1.0f;
    for (size_t g = 0; g < G; ++g) {
      const int m = rowBegin[g + 1] - rowBegin[g];
      if (m == 0) continue;
      const size_t r = static_cast<size_t>(rowBegin[g]);
      p.add(in, m, out, w[g], in, dy + r * out, out, dx + r * in, in);
    }
    run(p, stream);
  }
  if (!dw.empty()) {
    // dW_g col-major [in,out] += x_g(col-major [in, m_g]) · dy_g(col-major [out, m_g])ᵀ, in fp32
    Product p;
    p.opB = CUBLAS_OP_T;
    p.abType = dataTypeOf<T>();
    p.cType = CUDA_R_32F;
    p.beta = 1.0f;
    for (size_t g = 0; g < G; ++g) {
      const int m = rowBegin[g + 1] - rowBegin[g];
      if (m == 0) continue;
      const size_t r = static_cast<size_t>(rowBegin[g]);
      p.add(in, out, m, x + r * in, in, dy + r * out, out, dw[g], in);
    }
    run(p, stream);
  }
  if (!db.empty()) {
    for (size_t g0 = 0; g0 < G; g0 += kMax) {
      const size_t g1 = std::min(G, g0 + kMax);
      int most = 0;
      for (size_t g = g0; g < g1; ++g) most = std::max(most, rowBegin[g + 1] - rowBegin[g]);
      if (most == 0) continue;
      const dim3 grid(ceilDiv(out, 32), static_cast<unsigned>(g1 - g0), ceilDiv(most, kPartRows));
      groupedBiasGradKernel<T><<<grid, dim3(32, 8), 0, stream>>>(table(db, rowBegin, g0, g1), dy, out);
      MOESCOPE_CUDA_CHECK_LAUNCH();
    }
  }
}

template void GroupedLinear::forward<float>(float*, const float*, const std::vector<const float*>&,
                                            const std::vector<const float*>&, const std::vector<int>&, int,
                                            int, cudaStream_t, float*);
template void GroupedLinear::forward<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*,
                                                    const std::vector<const __nv_bfloat16*>&,
                                                    const std::vector<const __nv_bfloat16*>&,
                                                    const std::vector<int>&, int, int, cudaStream_t,
                                                    __nv_bfloat16*);
template void GroupedLinear::backward<float>(float*, const std::vector<float*>&, const std::vector<float*>&,
                                             const float*, const float*, const std::vector<const float*>&,
                                             const std::vector<int>&, int, int, cudaStream_t);
template void GroupedLinear::backward<__nv_bfloat16>(__nv_bfloat16*, const std::vector<float*>&,
                                                     const std::vector<float*>&, const __nv_bfloat16*,
                                                     const __nv_bfloat16*,
                                                     const std::vector<const __nv_bfloat16*>&,
                                                     const std::vector<int>&, int, int, cudaStream_t);

}  // namespace moescope::engine::cuda
