#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/global_norm.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 512;
constexpr unsigned kMaxBlocks = 1024;

__global__ void sumOfSquaresKernel(double* total, const float* x, size_t n) {
  __shared__ float scratch[32];
  float acc = 0.0f;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    const float v = x[i];
    acc += v * v;
  }
  const float blockTotal = blockSum(acc, scratch);
  if (threadIdx.x == 0) atomicAdd(total, static_cast<double>(blockTotal));
}

__global__ void clipCoefficientKernel(float* coef, const double* total, double maxNorm) {
  if (maxNorm <= 0.0) {
    *coef = 1.0f;
    return;
  }
  const double c = maxNorm / (sqrt(*total) + 1e-6);
  *coef = static_cast<float>(c < 1.0 ? c : 1.0);
}

}  // namespace

void accumulateSumOfSquares(double* total, const float* x, size_t n, cudaStream_t stream) {
  NvtxRange range("accumulateSumOfSquares");
  MOESCOPE_CUDA_REQUIRE("accumulateSumOfSquares", total != nullptr);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("accumulateSumOfSquares", x != nullptr);
  const size_t wanted = (n + kThreads - 1) / kThreads;
  const unsigned blocks = wanted < kMaxBlocks ? static_cast<unsigned>(wanted) : kMaxBlocks;
  sumOfSquaresKernel<<<blocks, kThreads, 0, stream>>>(total, x, n);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

void clipCoefficientDevice(float* coef, const double* total, double maxNorm, cudaStream_t stream) {
  NvtxRange range("clipCoefficientDevice");
  MOESCOPE_CUDA_REQUIRE("clipCoefficientDevice", coef != nullptr && total != nullptr);
  clipCoefficientKernel<<<1, 1, 0, stream>>>(coef, total, maxNorm);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace moescope::engine::cuda
