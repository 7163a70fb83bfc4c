#include "engine/cuda/cuda_check.h"
#include "engine/cuda/dtype.cuh"
#include "engine/cuda/sum.h"

namespace moescope::engine::cuda {

namespace {

constexpr int kThreads = 512;
constexpr unsigned kMaxBlocks = 1024;

struct Identity {
  __device__ float operator()(float v) const { return v; }
};
struct Square {
  __device__ float operator()(float v) const { return v * v; }
};

// *total += Σ f(x): each thread sums in float over a grid-stride loop, each block adds its total once,
// in double, to the accumulator.
template <typename F>
__global__ void sumKernel(double* total, const float* x, size_t n, F f) {
  __shared__ float scratch[32];
  float acc = 0.0f;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    acc += f(x[i]);
  }
  const float blockTotal = blockSum(acc, scratch);
  if (threadIdx.x == 0) atomicAdd(total, static_cast<double>(blockTotal));
}

template <typename F>
void launchSum(const char* launcher, double* total, const float* x, size_t n, F f, cudaStream_t stream) {
  NvtxRange range(launcher);
  MOESCOPE_CUDA_REQUIRE(launcher, total != nullptr);
  if (n == 0) return;
  MOESCOPE_CUDA_REQUIRE(launcher, x != nullptr);
  const size_t wanted = (n + kThreads - 1) / kThreads;
  const unsigned blocks = wanted < kMaxBlocks ? static_cast<unsigned>(wanted) : kMaxBlocks;
  sumKernel<<<blocks, kThreads, 0, stream>>>(total, x, n, f);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void accumulateSum(double* total, const float* x, size_t n, cudaStream_t stream) {
  launchSum("accumulateSum", total, x, n, Identity{}, stream);
}

void accumulateSumOfSquares(double* total, const float* x, size_t n, cudaStream_t stream) {
  launchSum("accumulateSumOfSquares", total, x, n, Square{}, stream);
}

}  // namespace moescope::engine::cuda
