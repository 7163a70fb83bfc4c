#include "engine/cuda/matmul.h"

#include <string>

#include "engine/cuda/cuda_check.h"

namespace moescope::engine::cuda {

namespace {

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

const char* typeName(cudaDataType_t t) {
  return t == CUDA_R_32F ? "f32" : t == CUDA_R_16BF ? "bf16" : t == CUDA_R_16F ? "f16" : "other";
}

const char* epilogueName(cublasLtEpilogue_t e) {
  switch (e) {
    case CUBLASLT_EPILOGUE_BIAS:
      return "BIAS";
    case CUBLASLT_EPILOGUE_GELU_AUX:
      return "GELU_AUX";
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS:
      return "GELU_AUX_BIAS";
    case CUBLASLT_EPILOGUE_DGELU:
      return "DGELU";
    case CUBLASLT_EPILOGUE_DGELU_BGRAD:
      return "DGELU_BGRAD";
    case CUBLASLT_EPILOGUE_BGRADB:
      return "BGRADB";
    default:
      return "another epilogue";
  }
}

std::string describe(cudaDataType_t abType, cudaDataType_t dType, cublasOperation_t opA,
                     cublasOperation_t opB, int m, int n, int k, const MatmulEpilogue& e) {
  std::string s = std::string("cuBLASLt refused ") + epilogueName(e.mode) + " for " + typeName(abType) +
                  " x " + typeName(abType) + " -> " + typeName(dType) + " (" +
                  (opA == CUBLAS_OP_T ? "T" : "N") + (opB == CUBLAS_OP_T ? "T" : "N") +
                  ") m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
  if (e.bias) s += std::string(", bias ") + typeName(e.biasType);
  if (e.aux) s += ", aux ld " + std::to_string(e.auxLd);
  return s;
}

template <class V>
void setDesc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const V& value) {
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(value)));
}

}  // namespace

bool matmul(CublasLt& lt, cudaDataType_t abType, cudaDataType_t dType, cublasOperation_t opA,
            cublasOperation_t opB, int m, int n, int k, const void* A, int lda, const void* B, int ldb,
            void* D, int ldd, float beta, const MatmulEpilogue& epilogue, cudaStream_t stream, float alpha,
            int batch, int64_t strideA, int64_t strideB, int64_t strideD) {
  const uint32_t alignA = alignmentOf(A), alignB = alignmentOf(B), alignD = alignmentOf(D);
  const bool plain = epilogue.mode == CUBLASLT_EPILOGUE_DEFAULT;
  const CublasLt::PlanKey key = {abType,
                                 dType,
                                 opA,
                                 opB,
                                 m,
                                 n,
                                 k,
                                 lda,
                                 ldb,
                                 ldd,
                                 epilogue.mode,
                                 epilogue.biasType,
                                 plain ? 0 : alignmentOf(epilogue.bias),
                                 plain ? 0 : alignmentOf(epilogue.aux),
                                 epilogue.auxLd,
                                 alignA,
                                 alignB,
                                 alignD,
                                 batch,
                                 strideA,
                                 strideB,
                                 strideD};
  auto plan = lt.plans().find(key);
  if (plan != lt.plans().end() && !plan->second) {  // known: no algorithm with this epilogue
    lt.countEpilogueFallback();
    return false;
  }

  MatmulDescriptors d;
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  setDesc(d.op, CUBLASLT_MATMUL_DESC_TRANSA, opA);
  setDesc(d.op, CUBLASLT_MATMUL_DESC_TRANSB, opB);
  if (!plain) {
    setDesc(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue.mode);
    if (epilogue.bias) {
      setDesc(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, epilogue.bias);
      const int32_t biasType = epilogue.biasType;
      setDesc(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, biasType);
    }
    if (epilogue.aux) {  // the GELU input, of D's type (cublasLt.h: the default for GELU; said explicitly)
      setDesc(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, epilogue.aux);
      setDesc(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, epilogue.auxLd);
      const int32_t auxType = dType;
      setDesc(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE, auxType);
    }
  }
  const bool aT = opA == CUBLAS_OP_T;
  const bool bT = opB == CUBLAS_OP_T;
  MOESCOPE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.a, abType, aT ? k : m, aT ? m : k, lda));
  MOESCOPE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.b, abType, bT ? n : k, bT ? k : n, ldb));
  MOESCOPE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.c, dType, m, n, ldd));
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

  if (plan == lt.plans().end()) {
    MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d.pref));
    const size_t workspace = lt.workspaceBytes();
    MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
    MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alignA, sizeof(alignA)));
    MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alignB, sizeof(alignB)));
    MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &alignD, sizeof(alignD)));
    MOESCOPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &alignD, sizeof(alignD)));
    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(lt.handle(), d.op, d.a, d.b, d.c, d.c, d.pref, 1, &heuristic, &found);
    // With an epilogue, no algorithm is an answer: the caller falls back to separate kernels. cuBLASLt
    // answers NOT_SUPPORTED or none found where it has no kernel, and INVALID_VALUE where the epilogue's
    // attributes are outside what it takes for these types (e.g. a bias gradient type other than D's,
    // cublasLt.h's CUBLASLT_MATMUL_DESC_BIAS_POINTER); either way the product runs without the epilogue
    // rather than the step failing, and the reason is kept.
    const bool refused = status == CUBLAS_STATUS_NOT_SUPPORTED || status == CUBLAS_STATUS_INVALID_VALUE ||
                         (status == CUBLAS_STATUS_SUCCESS && found == 0);
    if (!plain && refused) {
      lt.plans().emplace(key, std::nullopt);
      lt.countEpilogueFallback();
      lt.addEpilogueRefusal(
          describe(abType, dType, opA, opB, m, n, k, epilogue) + ": " +
          (status == CUBLAS_STATUS_SUCCESS ? "no algorithm found" : cublasLtGetStatusName(status)));
      return false;
    }
    MOESCOPE_CUBLAS_CHECK(status);
    if (found == 0) {
      throw CudaError("linear: cuBLASLt has no algorithm for m=" + std::to_string(m) +
                      " n=" + std::to_string(n) + " k=" + std::to_string(k));
    }
    plan = lt.plans().emplace(key, heuristic.algo).first;
  }
  MOESCOPE_CUBLAS_CHECK(cublasLtMatmul(lt.handle(), d.op, &alpha, A, d.a, B, d.b, &beta, D, d.c, D, d.c,
                                       &*plan->second, lt.workspace(), lt.workspaceBytes(), stream));
  return true;
}

}  // namespace moescope::engine::cuda
