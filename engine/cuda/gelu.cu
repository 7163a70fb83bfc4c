#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/gelu.cuh"
#include "engine/cuda/gelu.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 256;

unsigned gridFor(size_t n) {
  return gridStrideBlocks(n, kThreads);
}

// Vec: elements in groups of eight (n counts groups), loaded and stored as vectors.
template <typename T, bool Vec>
__global__ void geluForwardKernel(T* y, const T* x, size_t n) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    if constexpr (Vec) {
      float v[8];
      load8(v, x + 8 * i);
#pragma unroll
      for (int k = 0; k < 8; ++k) v[k] = gelu(v[k]);
      store8(y + 8 * i, v);
    } else {
      y[i] = fromFloat<T>(gelu(toFloat(x[i])));
    }
  }
}

// Accumulate: dx += gelu'(x)·dy; else dx = gelu'(x)·dy, where dx may be dy (each element is read before
// it is written, by the same thread).
template <typename T, bool Vec, bool Accumulate>
__global__ void geluBackwardKernel(T* dx, const T* x, const T* dy, size_t n) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    if constexpr (Vec) {
      float v[8], g[8], d[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      load8(v, x + 8 * i);
      load8(g, dy + 8 * i);
      if constexpr (Accumulate) load8(d, dx + 8 * i);
#pragma unroll
      for (int k = 0; k < 8; ++k) d[k] += geluGrad(v[k]) * g[k];
      store8(dx + 8 * i, d);
    } else {
      const float base = Accumulate ? toFloat(dx[i]) : 0.0f;
      dx[i] = fromFloat<T>(base + geluGrad(toFloat(x[i])) * toFloat(dy[i]));
    }
  }
}

template <typename T, bool Accumulate>
void launchGeluBackward(T* dx, const T* x, const T* dy, size_t n, cudaStream_t stream) {
  if (n % 8 == 0 && vectorizable(dx) && vectorizable(x) && vectorizable(dy)) {
    geluBackwardKernel<T, true, Accumulate><<<gridFor(n / 8), kThreads, 0, stream>>>(dx, x, dy, n / 8);
  } else {
    geluBackwardKernel<T, false, Accumulate><<<gridFor(n), kThreads, 0, stream>>>(dx, x, dy, n);
  }
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void geluForward(T* y, const T* x, size_t n, cudaStream_t stream) {
  NvtxRange range("geluForward");
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("geluForward", y != nullptr && x != nullptr);
  if (n % 8 == 0 && vectorizable(y) && vectorizable(x)) {
    geluForwardKernel<T, true><<<gridFor(n / 8), kThreads, 0, stream>>>(y, x, n / 8);
  } else {
    geluForwardKernel<T, false><<<gridFor(n), kThreads, 0, stream>>>(y, x, n);
  }
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void geluBackward(T* dx, const T* x, const T* dy, size_t n, cudaStream_t stream) {
  NvtxRange range("geluBackward");
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("geluBackward", dx != nullptr && x != nullptr && dy != nullptr);
  launchGeluBackward<T, true>(dx, x, dy, n, stream);
}

template <typename T>
void geluBackwardInPlace(T* d, const T* x, size_t n, cudaStream_t stream) {
  NvtxRange range("geluBackwardInPlace");
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("geluBackwardInPlace", d != nullptr && x != nullptr);
  launchGeluBackward<T, false>(d, x, d, n, stream);
}

template void geluForward<float>(float*, const float*, size_t, cudaStream_t);
template void geluForward<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, size_t, cudaStream_t);
template void geluBackward<float>(float*, const float*, const float*, size_t, cudaStream_t);
template void geluBackward<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, size_t,
                                          cudaStream_t);
template void geluBackwardInPlace<float>(float*, const float*, size_t, cudaStream_t);
template void geluBackwardInPlace<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, size_t, cudaStream_t);

}  // namespace moescope::engine::cuda
