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
#include <optional>

namespace moescope::engine::cuda {

// A cuBLASLt handle, its workspace on the current device, and the algorithm cuBLASLt's heuristic chose
// for each matmul shape and epilogue seen (asked once per shape; none where an epilogue is not offered).
// One per device (per rank thread); not shared between streams running at the same time.
class CublasLt {
 public:
  explicit CublasLt(size_t workspaceBytes = size_t{32} << 20);
  ~CublasLt();
  CublasLt(const CublasLt&) = delete;
  CublasLt& operator=(const CublasLt&) = delete;

  cublasLtHandle_t handle() const { return handle_; }
  void* workspace() const { return workspace_; }
  size_t workspaceBytes() const { return workspaceBytes_; }

  // types, operations, sizes, leading dimensions, epilogue (mode, bias type, bias and aux alignment, aux
  // leading dimension), operand alignments, batch count and strides
  using PlanKey = std::array<int64_t, 22>;
  std::map<PlanKey, std::optional<cublasLtMatmulAlgo_t>>& plans() { return plans_; }

  // A device buffer of at least `bytes` for the epilogues' bias gradients, kept between calls (it grows
  // when asked for more, which synchronises the device once).
  void* scratch(size_t bytes);

  // Products asked with an epilogue that cuBLASLt did not offer for their shape (each ran as a plain
  // product and separate kernels instead); for the benchmarks' reports.
  int64_t epilogueFallbacks() const { return epilogueFallbacks_; }
  void countEpilogueFallback() { ++epilogueFallbacks_; }

 private:
  std::map<PlanKey, std::optional<cublasLtMatmulAlgo_t>> plans_;
  void* scratch_ = nullptr;
  size_t scratchBytes_ = 0;
  int64_t epilogueFallbacks_ = 0;
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

// dx [n,in] += dy W (T); dw [out,in] += dyᵀ x (fp32); db [out] += Σ_rows dy (fp32). Each of dx, dw, db
// optional. dy [n,out]; x [n,in]; w [out,in]. With dw, db comes out of the same product (cuBLASLt's
// BGRADB epilogue, into a scratch vector then added to db: one pass over dy fewer); without it, or where
// cuBLASLt offers no such kernel, from biasGradient.
template <typename T>
void linearBackward(CublasLt& lt, T* dx, float* dw, float* db, const T* dy, const T* x, const T* w, int n,
                    int in, int out, cudaStream_t stream);

// db [out] += Σ_rows dy (fp32; atomics between blocks). dy [n,out].
template <typename T>
void biasGradient(float* db, const T* dy, int n, int out, cudaStream_t stream);

}  // namespace moescope::engine::cuda
