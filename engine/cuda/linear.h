// The linear layer y = x Wᵀ + b, W [out, in], through cuBLASLt: bf16 or fp32 operands, fp32
// accumulation (pure fp32 in the fp32 mode: no TF32), bias in the GEMM's epilogue. CPU reference:
// engine/cpu/ops.h linearForward/linearBackward.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>

namespace moescope::engine::cuda {

// A cuBLASLt handle, its workspace on the current device, and the algorithm cuBLASLt's heuristic chose
// for each matmul shape seen (asked once per shape). One per device (per rank thread); not shared
// between streams running at the same time.
class CublasLt {
 public:
  explicit CublasLt(size_t workspaceBytes = size_t{32} << 20);
  ~CublasLt();
  CublasLt(const CublasLt&) = delete;
  CublasLt& operator=(const CublasLt&) = delete;

  cublasLtHandle_t handle() const { return handle_; }
  void* workspace() const { return workspace_; }
  size_t workspaceBytes() const { return workspaceBytes_; }

  // types, operations, sizes, leading dimensions, bias, operand alignments, batch count and strides
  using PlanKey = std::array<int64_t, 18>;
  std::map<PlanKey, cublasLtMatmulAlgo_t>& plans() { return plans_; }

 private:
  std::map<PlanKey, cublasLtMatmulAlgo_t> plans_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
};

// Column-major D_i = alpha · op(A_i) · op(B_i) + beta · D_i for i < batch, matrix i at element offset
// i·stride of each; A and B of type abType, D of dType, fp32 accumulation (no TF32). m, n: D's rows
// and columns, k the inner size.
void matmulStridedBatched(CublasLt& lt, cudaDataType_t abType, cudaDataType_t dType, cublasOperation_t opA,
                          cublasOperation_t opB, int m, int n, int k, float alpha, const void* A, int lda,
                          int64_t strideA, const void* B, int ldb, int64_t strideB, float beta, void* D,
                          int ldd, int64_t strideD, int batch, cudaStream_t stream);

// y [n,out] overwritten; x [n,in]; w [out,in]; b [out] or nullptr. T = float or __nv_bfloat16.
template <typename T>
void linearForward(CublasLt& lt, T* y, const T* x, const T* w, const T* b, int n, int in, int out,
                   cudaStream_t stream);

// dx [n,in] += dy W (T); dw [out,in] += dyᵀ x (fp32); db [out] += Σ_rows dy (fp32, atomics). Each of
// dx, dw, db optional. dy [n,out]; x [n,in]; w [out,in].
template <typename T>
void linearBackward(CublasLt& lt, T* dx, float* dw, float* db, const T* dy, const T* x, const T* w, int n,
                    int in, int out, cudaStream_t stream);

}  // namespace moescope::engine::cuda
