#include <cstdint>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/linear.h"

namespace moescope::engine::cuda {

namespace {

template <typename T>
constexpr cudaDataType_t dataType();
template <>
constexpr cudaDataType_t dataType<float>() {
  return CUDA_R_32F;
}
template <>
constexpr cudaDataType_t dataType<__nv_bfloat16>() {
  return CUDA_R_16BF;
}

// The largest power of two (at most 256) that divides the address: cuBLASLt picks only kernels whose
// alignment needs the operands meet.
uint32_t alignmentOf(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && a % align != 0) align /= 2;
  return align;
}

// Owns the descriptors of one matmul so every exit path destroys them.
struct MatmulDescriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~MatmulDescriptors() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// Column-major D [m,nCols] (ld ldd) = op(A) op(B) + beta · D, (+ bias [m] per row when given); compute
// and scale in fp32. A is stored m×k (opA N) or k×m (opA T), B k×nCols (N) or nCols×k (T).
void matmul(CublasLt& lt, cudaDataType_t abType, cudaDataType_t dType, cublasOperation_t opA,
            cublasOperation_t opB, int m, int nCols, int k, const void* A, int lda, const void* B, int ldb,
            void* D, int ldd, float beta, const void* bias, cudaStream_t stream, float alpha = 1.0f,
            int batch = 1, int64_t strideA = 0, int64_t strideB = 0, int64_t strideD = 0) {
  MatmulDescriptors d;
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA)));
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB)));
  if (bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    MOESCOPE_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    MOESCOPE_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    MOESCOPE_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &dType, sizeof(dType)));
  }
  const bool aT = opA == CUBLAS_OP_T;
  const bool bT = opB == CUBLAS_OP_T;
  MOESCOPE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.a, abType, aT ? k : m, aT ? m : k, lda));
  MOESCOPE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.b, abType, bT ? nCols : k, bT ? k : nCols, ldb));
  MOESCOPE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.c, dType, m, nCols, ldd));
  if (batch > 1) {
    const int64_t strides[3] = {strideA, strideB, strideD};
    cublasLtMatrixLayout_t layouts[3] = {d.a, d.b, d.c};
    for (int i = 0; i < 3; ++i) {
      MOESCOPE_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layouts[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                             &batch, sizeof(batch)));
      MOESCOPE_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
          layouts[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i], sizeof(strides[i])));
    }
  }

  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d.pref));
  const size_t workspace = lt.workspaceBytes();
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &workspace, sizeof(workspace)));
  const uint32_t alignA = alignmentOf(A), alignB = alignmentOf(B), alignD = alignmentOf(D);
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alignA, sizeof(alignA)));
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alignB, sizeof(alignB)));
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &alignD, sizeof(alignD)));
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &alignD, sizeof(alignD)));

  const CublasLt::PlanKey key = {
      abType, dType,           opA,    opB,    m,      nCols, k,       lda,     ldb,
      ldd,    bias != nullptr, alignA, alignB, alignD, batch, strideA, strideB, strideD};
  auto plan = lt.plans().find(key);
  if (plan == lt.plans().end()) {
    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    MOESCOPE_CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(lt.handle(), d.op, d.a, d.b, d.c, d.c, d.pref, 1, &heuristic, &found));
    if (found == 0) {
      throw CudaError("linear: cuBLASLt has no algorithm for m=" + std::to_string(m) +
                      " n=" + std::to_string(nCols) + " k=" + std::to_string(k));
    }
    plan = lt.plans().emplace(key, heuristic.algo).first;
  }
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmul(lt.handle(), d.op, &alpha, A, d.a, B, d.b, &beta, D, d.c, D, d.c,
                                       &plan->second, lt.workspace(), workspace, stream));
}

constexpr int kBiasCols = 32;
constexpr int kBiasRows = 8;

// db[o] += Σ_r dy[r, o]: a 32-column strip per block in x, rows split over blocks in y.
template <typename T>
__global__ void biasGradKernel(float* db, const T* dy, int n, int out) {
  __shared__ float partial[kBiasRows][kBiasCols + 1];
  const int col = blockIdx.x * kBiasCols + threadIdx.x;
  float acc = 0.0f;
  if (col < out) {
    for (int r = blockIdx.y * kBiasRows + threadIdx.y; r < n; r += gridDim.y * kBiasRows) {
      acc += toFloat(dy[static_cast<size_t>(r) * out + col]);
    }
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < out) {
    float sum = 0.0f;
    for (int i = 0; i < kBiasRows; ++i) sum += partial[i][threadIdx.x];
    atomicAdd(&db[col], sum);
  }
}

}  // namespace

CublasLt::CublasLt(size_t workspaceBytes) : workspaceBytes_(workspaceBytes) {
  MOESCOPE_CUBLAS_CHECK(cublasLtCreate(&handle_));
  if (workspaceBytes_ > 0) {
    const cudaError_t status = cudaMalloc(&workspace_, workspaceBytes_);
    if (status != cudaSuccess) {
      cublasLtDestroy(handle_);
      MOESCOPE_CUDA_CHECK(status);
    }
  }
}

CublasLt::~CublasLt() {
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

void matmulStridedBatched(CublasLt& lt, cudaDataType_t abType, cudaDataType_t dType, cublasOperation_t opA,
                          cublasOperation_t opB, int m, int n, int k, float alpha, const void* A, int lda,
                          int64_t strideA, const void* B, int ldb, int64_t strideB, float beta, void* D,
                          int ldd, int64_t strideD, int batch, cudaStream_t stream) {
  NvtxRange range("matmulStridedBatched");
  MOESCOPE_CUDA_REQUIRE("matmulStridedBatched", m > 0 && n > 0 && k > 0 && batch > 0 && A && B && D);
  matmul(lt, abType, dType, opA, opB, m, n, k, A, lda, B, ldb, D, ldd, beta, nullptr, stream, alpha, batch,
         strideA, strideB, strideD);
}

template <typename T>
void linearForward(CublasLt& lt, T* y, const T* x, const T* w, const T* b, int n, int in, int out,
                   cudaStream_t stream) {
  NvtxRange range("linearForward");
  MOESCOPE_CUDA_REQUIRE("linearForward", n >= 0 && in > 0 && out > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("linearForward", y && x && w);
  // row-major y [n,out] is column-major [out,n] = Wᵀ(col-major [in,out]) · x(col-major [in,n])
  matmul(lt, dataType<T>(), dataType<T>(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w, in, x, in, y, out, 0.0f,
         b, stream);
}

template <typename T>
void linearBackward(CublasLt& lt, T* dx, float* dw, float* db, const T* dy, const T* x, const T* w, int n,
                    int in, int out, cudaStream_t stream) {
  NvtxRange range("linearBackward");
  MOESCOPE_CUDA_REQUIRE("linearBackward", n >= 0 && in > 0 && out > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("linearBackward", dy != nullptr);
  if (dx) {
    MOESCOPE_CUDA_REQUIRE("linearBackward", w != nullptr);
    // dx col-major [in,n] += W(col-major [in,out]) · dy(col-major [out,n])
    matmul(lt, dataType<T>(), dataType<T>(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w, in, dy, out, dx, in,
           1.0f, nullptr, stream);
  }
  if (dw) {
    MOESCOPE_CUDA_REQUIRE("linearBackward", x != nullptr);
    // dW col-major [in,out] += x(col-major [in,n]) · dy(col-major [out,n])ᵀ
    matmul(lt, dataType<T>(), CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, x, in, dy, out, dw, in, 1.0f,
           nullptr, stream);
  }
  if (db) {
    const unsigned rowBlocks = ceilDiv(n, 256) < 65535u ? ceilDiv(n, 256) : 65535u;
    biasGradKernel<T>
        <<<dim3(ceilDiv(out, kBiasCols), rowBlocks), dim3(kBiasCols, kBiasRows), 0, stream>>>(db, dy, n, out);
    MOESCOPE_CUDA_CHECK_LAUNCH();
  }
}

template void linearForward<float>(CublasLt&, float*, const float*, const float*, const float*, int, int, int,
                                   cudaStream_t);
template void linearForward<__nv_bfloat16>(CublasLt&, __nv_bfloat16*, const __nv_bfloat16*,
                                           const __nv_bfloat16*, const __nv_bfloat16*, int, int, int,
                                           cudaStream_t);
template void linearBackward<float>(CublasLt&, float*, float*, float*, const float*, const float*,
                                    const float*, int, int, int, cudaStream_t);
template void linearBackward<__nv_bfloat16>(CublasLt&, __nv_bfloat16*, float*, float*, const __nv_bfloat16*,
                                            const __nv_bfloat16*, const __nv_bfloat16*, int, int, int,
                                            cudaStream_t);

}  // namespace moescope::engine::cuda
