#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/residual.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void residualKernel(T* out, const T* x, const T* z, const T* bias, size_t total, int C) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total; i += size_t{gridDim.x} * blockDim.x) {
    float v = toFloat(x[i]) + toFloat(z[i]);
    if (bias) v += toFloat(bias[i % static_cast<size_t>(C)]);
    out[i] = fromFloat<T>(v);
  }
}

}  // namespace

template <typename T>
void residualAdd(T* out, const T* x, const T* z, const T* bias, int n, int C, cudaStream_t stream) {
  NvtxRange range("residualAdd");
  MOESCOPE_CUDA_REQUIRE("residualAdd", n >= 0 && C > 0);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("residualAdd", out && x && z);
  const size_t total = static_cast<size_t>(n) * C;
  const size_t wanted = (total + kThreads - 1) / kThreads;
  const unsigned blocks = static_cast<unsigned>(wanted < 65535u * 8u ? wanted : 65535u * 8u);
  residualKernel<T><<<blocks, kThreads, 0, stream>>>(out, x, z, bias, total, C);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template void residualAdd<float>(float*, const float*, const float*, const float*, int, int, cudaStream_t);
template void residualAdd<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                         const __nv_bfloat16*, int, int, cudaStream_t);

}  // namespace moescope::engine::cuda
