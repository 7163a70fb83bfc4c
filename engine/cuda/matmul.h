// One cuBLASLt matrix product with an optional epilogue: the helper behind linear.h and linear_gelu.h.
// Column-major D [m,n] (ld ldd) = alpha · op(A) op(B) + beta · D, A stored m×k (opA N) or k×m (opA T),
// B k×n (N) or n×k (T); fp32 accumulation and scale (pure fp32 for fp32 operands: no TF32).
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <type_traits>

#include "engine/cuda/cublaslt.h"

namespace moescope::engine::cuda {

// What cuBLASLt does to the product before it stores D.
struct MatmulEpilogue {
  cublasLtEpilogue_t mode = CUBLASLT_EPILOGUE_DEFAULT;
  // BIAS, GELU_AUX_BIAS: the bias [m] (D's type), added to every column. BGRADB: the bias gradient [n],
  // DGELU_BGRAD: [m], overwritten, of type biasType.
  const void* bias = nullptr;
  cudaDataType_t biasType = CUDA_R_32F;
  // GELU_AUX_BIAS: the GELU input, written; DGELU_BGRAD: read. Column-major [m,n], ld auxLd, D's type.
  const void* aux = nullptr;
  int64_t auxLd = 0;
};

// Returns false, having launched nothing, where cuBLASLt offers no algorithm for the product with this
// epilogue (the answer is kept per shape, so asking again costs a map lookup); throws CudaError where
// it offers none without an epilogue, or a call fails. batch > 1: matrix i at element offset i·stride
// of each operand.
bool matmul(CublasLt& lt, cudaDataType_t abType, cudaDataType_t dType, cublasOperation_t opA,
            cublasOperation_t opB, int m, int n, int k, const void* A, int lda, const void* B, int ldb,
            void* D, int ldd, float beta, const MatmulEpilogue& epilogue, cudaStream_t stream,
            float alpha = 1.0f, int batch = 1, int64_t strideA = 0, int64_t strideB = 0, int64_t strideD = 0);

// cudaDataType_t of a storage type (float or __nv_bfloat16).
template <typename T>
constexpr cudaDataType_t dataTypeOf() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, __nv_bfloat16>);
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
}

}  // namespace moescope::engine::cuda
