#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/residual.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;

// Vec: elements in groups of eight (total counts groups; C a multiple of 8), loaded and stored as vectors.
template <typename T, bool Vec>
__global__ void residualKernel(T* out, const T* x, const T* z, const T* bias, size_t total, int C) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x) {
    if constexpr (Vec) {
      float a[8], b[8];
      load8(a, x + 8 * i);
      load8(b, z + 8 * i);
#pragma unroll
      for (int k = 0; k < 8; ++k) a[k] += b[k];
      if (bias) {
        load8(b, bias + (8 * i) % static_cast<size_t>(C));
#pragma unroll
        for (int k = 0; k < 8; ++k) a[k] += b[k];
      }
      store8(out + 8 * i, a);
    } else {
      float v = toFloat(x[i]) + toFloat(z[i]);
      if (bias) v += toFloat(bias[i % static_cast<size_t>(C)]);
      out[i] = fromFloat<T>(v);
    }
  }
}

unsigned gridFor(size_t n) {
  return gridStrideBlocks(n, kThreads);
}

}  // namespace

template <typename T>
void residualAdd(T* out, const T* x, const T* z, const T* bias, int n, int C, cudaStream_t stream) {
  NvtxRange range("residualAdd");
  MOESCOPE_CUDA_REQUIRE("residualAdd", n >= 0 && C > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("residualAdd", out && x && z);
  const size_t total = static_cast<size_t>(n) * C;
  if (C % 8 == 0 && vectorizable(out) && vectorizable(x) && vectorizable(z) && vectorizable(bias)) {
    residualKernel<T, true><<<gridFor(total / 8), kThreads, 0, stream>>>(out, x, z, bias, total / 8, C);
  } else {
    residualKernel<T, false><<<gridFor(total), kThreads, 0, stream>>>(out, x, z, bias, total, C);
  }
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template void residualAdd<float>(float*, const float*, const float*, const float*, int, int, cudaStream_t);
template void residualAdd<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                         const __nv_bfloat16*, int, int, cudaStream_t);

}  // namespace moescope::engine::cuda
