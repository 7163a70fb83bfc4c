#include "engine/cuda/launch_config.h"

#include <cuda_runtime_api.h>

#include <algorithm>

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

ColumnStrips columnStrips(int n, int columns, int strip, int rowsPerStep) {
  ColumnStrips g;
  g.columnBlocks = ceilDiv(static_cast<size_t>(columns), static_cast<size_t>(strip));
  const unsigned wanted = ceilDiv(4 * static_cast<size_t>(multiprocessorCount()), g.columnBlocks);
  g.parts = std::max(1u, std::min(wanted, ceilDiv(static_cast<size_t>(n), static_cast<size_t>(rowsPerStep))));
  g.rowsPerPart = static_cast<int>(ceilDiv(static_cast<size_t>(n), g.parts));
  return g;
}

}  // namespace moescope::engine::cuda
