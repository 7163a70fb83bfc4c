#include <algorithm>
#include <cstdint>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/elementwise.h"
#include "engine/cuda/launch_config.h"
#include "engine/cuda/linear.h"
#include "engine/cuda/matmul.h"

namespace moescope::engine::cuda {

namespace {

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

// The same sum in 16-byte accesses (out a multiple of 8, dy aligned): a lane takes eight adjacent columns,
// a warp 256 (512 bytes of a row), the block's 8 warps every 8th row of its part; the warps' sums meet in
// shared memory and the block adds them with one atomic a column. The kernel above reads 2 bytes a lane
// (64 a warp) and ran the bench model's 32 bias gradients of a step at about half the copy bandwidth.
constexpr int kBiasVecCols = 8 * 32;

template <typename T>
__global__ void biasGradVecKernel(float* db, const T* dy, int n, int out, int rowsPerPart) {
  __shared__ float partial[kBiasRows][kBiasVecCols];
  const int col = blockIdx.x * kBiasVecCols + 8 * threadIdx.x;
  const int r0 = blockIdx.y * rowsPerPart;
  const int r1 = min(n, r0 + rowsPerPart);
  float acc[8] = {};
  if (col < out) {
#pragma unroll 4
    for (int r = r0 + threadIdx.y; r < r1; r += kBiasRows) {
      float v[8];
      load8(v, dy + static_cast<size_t>(r) * out + col);
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[k] += v[k];
    }
  }
#pragma unroll
  for (int k = 0; k < 8; ++k) partial[threadIdx.y][8 * threadIdx.x + k] = acc[k];
  __syncthreads();
  // Thread (x, y) adds up column 32·y + x of the block's 256 across the 8 warps' rows.
  const int c = threadIdx.y * 32 + threadIdx.x;
  if (blockIdx.x * kBiasVecCols + c < out) {
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kBiasRows; ++i) sum += partial[i][c];
    atomicAdd(&db[blockIdx.x * kBiasVecCols + c], sum);
  }
}

}  // namespace

void matmulStridedBatched(CublasLt& lt, cudaDataType_t abType, cudaDataType_t dType, cublasOperation_t opA,
                          cublasOperation_t opB, int m, int n, int k, float alpha, const void* A, int lda,
                          int64_t strideA, const void* B, int ldb, int64_t strideB, float beta, void* D,
                          int ldd, int64_t strideD, int batch, cudaStream_t stream) {
  NvtxRange range("matmulStridedBatched");
  MOESCOPE_CUDA_REQUIRE("matmulStridedBatched", m > 0 && n > 0 && k > 0 && batch > 0 && A && B && D);
  matmul(lt, abType, dType, opA, opB, m, n, k, A, lda, B, ldb, D, ldd, beta, MatmulEpilogue{}, stream, alpha,
         batch, strideA, strideB, strideD);
}

template <typename T>
void linearForward(CublasLt& lt, T* y, const T* x, const T* w, const T* b, int n, int in, int out,
                   cudaStream_t stream) {
  NvtxRange range("linearForward");
  MOESCOPE_CUDA_REQUIRE("linearForward", n >= 0 && in > 0 && out > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("linearForward", y && x && w);
  // row-major y [n,out] is column-major [out,n] = Wᵀ(col-major [in,out]) · x(col-major [in,n])
  MatmulEpilogue epilogue;
  if (b) {
    epilogue.mode = CUBLASLT_EPILOGUE_BIAS;
    epilogue.bias = b;
    epilogue.biasType = dataTypeOf<T>();
  }
  if (!matmul(lt, dataTypeOf<T>(), dataTypeOf<T>(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w, in, x, in, y,
              out, 0.0f, epilogue, stream)) {
    throw CudaError("linearForward: cuBLASLt has no kernel with a bias epilogue for n=" + std::to_string(n) +
                    " in=" + std::to_string(in) + " out=" + std::to_string(out));
  }
}

template <typename T>
void linearBackward(CublasLt& lt, T* dx, float* dw, float* db, const T* dy, const T* x, const T* w, int n,
                    int in, int out, cudaStream_t stream, bool overwriteDx) {
  NvtxRange range("linearBackward");
  MOESCOPE_CUDA_REQUIRE("linearBackward", n >= 0 && in > 0 && out > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("linearBackward", dy != nullptr);
  if (dx) {
    MOESCOPE_CUDA_REQUIRE("linearBackward", w != nullptr);
    // dx col-major [in,n] += W(col-major [in,out]) · dy(col-major [out,n]) (beta 0: =, dx not read)
    matmul(lt, dataTypeOf<T>(), dataTypeOf<T>(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w, in, dy, out, dx, in,
           overwriteDx ? 0.0f : 1.0f, MatmulEpilogue{}, stream);
  }
  bool dbDone = false;
  if (dw) {
    MOESCOPE_CUDA_REQUIRE("linearBackward", x != nullptr);
    // dW col-major [in,out] += x(col-major [in,n]) · dy(col-major [out,n])ᵀ; with db, Σ over the k = n rows
    // of op(B) = dyᵀ is the bias gradient (BGRADB), which the epilogue writes, hence the scratch vector.
    MatmulEpilogue epilogue;
    float* dbPart = nullptr;
    if (db && lt.biasGradientEpilogue()) {
      dbPart = static_cast<float*>(lt.scratch(static_cast<size_t>(out) * sizeof(float)));
      epilogue.mode = CUBLASLT_EPILOGUE_BGRADB;
      epilogue.bias = dbPart;
      epilogue.biasType = CUDA_R_32F;
      dbDone = matmul(lt, dataTypeOf<T>(), CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, x, in, dy, out,
                      dw, in, 1.0f, epilogue, stream);
      if (dbDone) addInPlace<float>(db, dbPart, static_cast<size_t>(out), stream);
    }
    if (!dbDone) {
      matmul(lt, dataTypeOf<T>(), CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, x, in, dy, out, dw, in,
             1.0f, MatmulEpilogue{}, stream);
    }
  }
  if (db && !dbDone) biasGradient(db, dy, n, out, stream);
}

template <typename T>
void biasGradient(float* db, const T* dy, int n, int out, cudaStream_t stream) {
  NvtxRange range("biasGradient");
  MOESCOPE_CUDA_REQUIRE("biasGradient", n >= 0 && out > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("biasGradient", db && dy);
  if (out % 8 == 0 && vectorizable(dy)) {
    const ColumnStrips g = columnStrips(n, out, kBiasVecCols, kBiasRows);
    biasGradVecKernel<T>
        <<<dim3(g.columnBlocks, g.parts), dim3(32, kBiasRows), 0, stream>>>(db, dy, n, out, g.rowsPerPart);
    MOESCOPE_CUDA_CHECK_LAUNCH();
    return;
  }
  const unsigned rowBlocks = ceilDiv(n, 256) < 65535u ? ceilDiv(n, 256) : 65535u;
  biasGradKernel<T>
      <<<dim3(ceilDiv(out, kBiasCols), rowBlocks), dim3(kBiasCols, kBiasRows), 0, stream>>>(db, dy, n, out);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template void linearForward<float>(CublasLt&, float*, const float*, const float*, const float*, int, int, int,
                                   cudaStream_t);
template void linearForward<__nv_bfloat16>(CublasLt&, __nv_bfloat16*, const __nv_bfloat16*,
                                           const __nv_bfloat16*, const __nv_bfloat16*, int, int, int,
                                           cudaStream_t);
template void linearBackward<float>(CublasLt&, float*, float*, float*, const float*, const float*,
                                    const float*, int, int, int, cudaStream_t, bool);
template void linearBackward<__nv_bfloat16>(CublasLt&, __nv_bfloat16*, float*, float*, const __nv_bfloat16*,
                                            const __nv_bfloat16*, const __nv_bfloat16*, int, int, int,
                                            cudaStream_t, bool);
template void biasGradient<float>(float*, const float*, int, int, cudaStream_t);
template void biasGradient<__nv_bfloat16>(float*, const __nv_bfloat16*, int, int, cudaStream_t);

}  // namespace moescope::engine::cuda
