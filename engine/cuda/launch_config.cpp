#include "engine/cuda/launch_config.h"

#include <cuda_runtime_api.h>

#include "engine/cuda/cuda_check.h"

namespace moescope::engine::cuda {

namespace {

int attribute(cudaDeviceAttr attr) {
  int device = 0;
  MOESCOPE_CUDA_CHECK(cudaGetDevice(&device));
  int value = 0;
  MOESCOPE_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, device));
  return value;
}

}  // namespace

int multiprocessorCount() {
  return attribute(cudaDevAttrMultiProcessorCount);
}

int maxSharedMemoryPerBlockOptin() {
  return attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
}

}  // namespace moescope::engine::cuda
