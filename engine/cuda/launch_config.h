// Device properties the launchers size their grids and shared memory by, read once per device.
#pragma once

namespace moescope::engine::cuda {

// Streaming multiprocessors of the current device.
int multiprocessorCount();
// The most dynamic shared memory one block may opt in to on the current device, in bytes.
int maxSharedMemoryPerBlockOptin();

}  // namespace moescope::engine::cuda
