// A kernel for the collector's tests to launch: y = a * x + y.
#include "tests/tracer_gpu/test_kernels.h"

namespace {
__global__ void saxpyKernel(float a, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
}  // namespace

cudaError_t launchSaxpy(float a, const float* x, float* y, int n, cudaStream_t stream) {
  saxpyKernel<<<(n + 255) / 256, 256, 0, stream>>>(a, x, y, n);
  return cudaGetLastError();
}
