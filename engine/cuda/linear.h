// The linear layer y = x Wᵀ + b, W [out, in], through cuBLASLt: bf16 or fp32 operands, fp32
// accumulation (pure fp32 in the fp32 mode: no TF32), bias in the GEMM's epilogue. CPU reference:
// engine/cpu/ops.h linearForward/linearBackward.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/cuda/cublaslt.h"

namespace moescope::engine::cuda {

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
// optional. dy [n,out]; x [n,in]; w [out,in]. overwriteDx: dx = dy W instead (dx need not hold numbers: the
// product reads nothing of it), for a gradient with one writer, which then needs no zeroing first. With dw,
// db comes out of the same product (cuBLASLt's BGRADB epilogue, into a scratch vector then added to db: one
// pass over dy fewer); without it, where cuBLASLt offers no such kernel, or with lt.biasGradientEpilogue()
// off, from biasGradient.
template <typename T>
void linearBackward(CublasLt& lt, T* dx, float* dw, float* db, const T* dy, const T* x, const T* w, int n,
                    int in, int out, cudaStream_t stream, bool overwriteDx = false);

// db [out] += Σ_rows dy (fp32; atomics between blocks). dy [n,out].
template <typename T>
void biasGradient(float* db, const T* dy, int n, int out, cudaStream_t stream);

}  // namespace moescope::engine::cuda
