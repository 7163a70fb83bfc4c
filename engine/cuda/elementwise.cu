#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/elementwise.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;

unsigned gridFor(size_t n) {
  return gridStrideBlocks(n, kThreads);
}

#define MOESCOPE_GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < (n); i += size_t{gridDim.x} * blockDim.x)

template <typename T>
__global__ void addKernel(T* y, const T* x, size_t n) {
  MOESCOPE_GRID_STRIDE(i, n) y[i] = fromFloat<T>(toFloat(y[i]) + toFloat(x[i]));
}

template <typename In, typename Out>
__global__ void convertKernel(Out* out, const In* in, size_t n) {
  MOESCOPE_GRID_STRIDE(i, n) out[i] = fromFloat<Out>(toFloat(in[i]));
}

__global__ void accumulateKernel(float* out, const __nv_bfloat16* in, size_t n) {
  MOESCOPE_GRID_STRIDE(i, n) out[i] += __bfloat162float(in[i]);
}

#undef MOESCOPE_GRID_STRIDE

}  // namespace

template <typename T>
void addInPlace(T* y, const T* x, size_t n, cudaStream_t stream) {
  NvtxRange range("addInPlace");
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("addInPlace", y && x);
  addKernel<T><<<gridFor(n), kThreads, 0, stream>>>(y, x, n);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

void convertToBf16(__nv_bfloat16* out, const float* in, size_t n, cudaStream_t stream) {
  NvtxRange range("convertToBf16");
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("convertToBf16", out && in);
  convertKernel<float, __nv_bfloat16><<<gridFor(n), kThreads, 0, stream>>>(out, in, n);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

void convertToFloat(float* out, const __nv_bfloat16* in, size_t n, cudaStream_t stream) {
  NvtxRange range("convertToFloat");
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("convertToFloat", out && in);
  convertKernel<__nv_bfloat16, float><<<gridFor(n), kThreads, 0, stream>>>(out, in, n);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

void accumulateToFloat(float* out, const __nv_bfloat16* in, size_t n, cudaStream_t stream) {
  NvtxRange range("accumulateToFloat");
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("accumulateToFloat", out && in);
  accumulateKernel<<<gridFor(n), kThreads, 0, stream>>>(out, in, n);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template void addInPlace<float>(float*, const float*, size_t, cudaStream_t);
template void addInPlace<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, size_t, cudaStream_t);

}  // namespace moescope::engine::cuda
