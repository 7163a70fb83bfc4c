// The experts of a rank as one grouped linear layer: group g is the rows rowBegin[g]..rowBegin[g+1]-1 of
// the gathered tokens (moe_slicing.h orders them by expert) and has its own weight W_g [out,in] and bias
// b_g [out]. Each product runs as one cuBLAS grouped GEMM (cublasGemmGroupedBatchedEx, CUDA 12.5+) over
// every group instead of a cuBLASLt launch per expert, and the biases are added and summed for all groups
// in one launch each. Where cuBLAS refuses a grouped product (the weight gradient accumulates bf16
// products into fp32, a type mix its grouped GEMM may not take) that product runs per group through
// cuBLASLt, and the refusal is remembered. CPU reference: engine/cpu/ops.h linearForward and
// linearBackward, group by group.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "engine/cuda/cublaslt.h"

namespace moescope::engine::cuda {

class GroupedLinear {
 public:
  // Groups a call may hold (the pointers travel as one kernel argument); more run group by group.
  static constexpr int kMaxGroups = 128;

  // A cuBLAS handle on the current device; lt runs the per-group fallback.
  explicit GroupedLinear(CublasLt& lt);
  ~GroupedLinear();
  GroupedLinear(const GroupedLinear&) = delete;
  GroupedLinear& operator=(const GroupedLinear&) = delete;

  // y [rows,out] overwritten, rows = rowBegin.back(): y_g = x_g W_gᵀ + b_g. x [rows,in]; w[g] [out,in];
  // b empty (no bias) or b[g] [out]. rowBegin [G+1], non-decreasing from 0; empty groups are skipped.
  // With pre: pre = x_g W_gᵀ + b_g and y = gelu(pre), the bias and the GELU in one pass over all groups
  // (the first layer of the experts' FFN). The bias is added to the product as stored (rounded to T),
  // where cuBLASLt's bias epilogue adds it before rounding.
  template <typename T>
  void forward(T* y, const T* x, const std::vector<const T*>& w, const std::vector<const T*>& b,
               const std::vector<int>& rowBegin, int in, int out, cudaStream_t stream, T* pre = nullptr);

  // dx [rows,in] += dy_g W_g (dx optional); dw[g] [out,in] += dy_gᵀ x_g (fp32; dw empty: none);
  // db[g] [out] += Σ rows of dy_g (fp32; db empty: none). dy [rows,out]; x [rows,in]; w as forward.
  template <typename T>
  void backward(T* dx, const std::vector<float*>& dw, const std::vector<float*>& db, const T* dy, const T* x,
                const std::vector<const T*>& w, const std::vector<int>& rowBegin, int in, int out,
                cudaStream_t stream);

  // For the benchmark's report: products run as one grouped GEMM, and products run group by group.
  int64_t groupedProducts() const { return grouped_; }
  int64_t loopedProducts() const { return looped_; }

 private:
  // One product per group: C_g = op(A_g) op(B_g) + beta · C_g, column-major, A and B of abType, C of
  // cType. Grouped where cuBLAS takes it, else per group.
  struct Product;
  void run(const Product& p, cudaStream_t stream);

  CublasLt& lt_;
  cublasHandle_t handle_ = nullptr;
  void* pointers_ = nullptr;   // device arrays A, B, C of kMaxGroups pointers each
  bool refusedMixed_ = false;  // cuBLAS refused bf16 operands into an fp32 result
  int64_t grouped_ = 0, looped_ = 0;
};

}  // namespace moescope::engine::cuda
