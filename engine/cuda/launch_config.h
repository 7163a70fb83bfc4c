// Device properties the launchers size their grids and shared memory by, read once per device.
#pragma once

namespace moescope::engine::cuda {

// Streaming multiprocessors of the current device.
int multiprocessorCount();
// The most dynamic shared memory one block may opt in to on the current device, in bytes.
int maxSharedMemoryPerBlockOptin();

// A grid for a sum over the rows of each column (bias and LayerNorm parameter gradients): strips of `strip`
// columns in x, the n rows split into parts in y so that the device gets about four blocks a
// multiprocessor (at least `rowsPerStep` rows a part).
struct ColumnStrips {
  unsigned columnBlocks = 0;
  unsigned parts = 0;
  int rowsPerPart = 0;
};
ColumnStrips columnStrips(int n, int columns, int strip, int rowsPerStep);

}  // namespace moescope::engine::cuda
