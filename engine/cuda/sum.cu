#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/sum.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 512;
constexpr unsigned kMaxBlocks = 1024;

__global__ void sumKernel(double* total, const float* x, size_t n) {
  __shared__ float scratch[32];
  float acc = 0.0f;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    acc += x[i];
  }
  const float blockTotal = blockSum(acc, scratch);
  if (threadIdx.x == 0) atomicAdd(total, static_cast<double>(blockTotal));
}

}  // namespace

void accumulateSum(double* total, const float* x, size_t n, cudaStream_t stream) {
  NvtxRange range("accumulateSum");
  MOESCOPE_CUDA_REQUIRE("accumulateSum", total != nullptr);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE("accumulateSum", x != nullptr);
  const size_t wanted = (n + kThreads - 1) / kThreads;
  const unsigned blocks = wanted < kMaxBlocks ? static_cast<unsigned>(wanted) : kMaxBlocks;
  sumKernel<<<blocks, kThreads, 0, stream>>>(total, x, n);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace moescope::engine::cuda
