#include "engine/cuda/cuda_check.h"
#include "engine/cuda/global_norm.h"

namespace moescope::engine::cuda {

namespace {

__global__ void clipCoefficientKernel(float* coef, const double* total, double maxNorm) {
  if (maxNorm <= 0.0) {
    *coef = 1.0f;
    return;
  }
  const double c = maxNorm / (sqrt(*total) + 1e-6);
  *coef = static_cast<float>(c < 1.0 ? c : 1.0);
}

}  // namespace

void clipCoefficientDevice(float* coef, const double* total, double maxNorm, cudaStream_t stream) {
  NvtxRange range("clipCoefficientDevice");
  MOESCOPE_CUDA_REQUIRE("clipCoefficientDevice", coef != nullptr && total != nullptr);
  clipCoefficientKernel<<<1, 1, 0, stream>>>(coef, total, maxNorm);
  MOESCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace moescope::engine::cuda
