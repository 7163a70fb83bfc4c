// The engine's device memory, counted: every allocation made through deviceAlloc is tracked per device,
// so a run can report the most it held at once (its peak), the figure PyTorch's
// torch.cuda.max_memory_allocated gives for its allocator; beside it the device's own count
// (cudaMemGetInfo), which also holds the CUDA context, cuBLAS's and NCCL's buffers and other processes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace moescope::engine::cuda {

// cudaMalloc on the current device, counted; throws CudaError (as MOESCOPE_CUDA_CHECK) on failure.
void* deviceAlloc(size_t bytes);
// cudaFree of a pointer deviceAlloc returned (nullptr: nothing), uncounted. Never throws.
void deviceFree(void* p) noexcept;

struct DeviceMemory {
  int64_t current = 0;  // bytes the engine holds on the device now
  int64_t peak = 0;     // the most it held at once since the start or resetDevicePeak
  int64_t used = 0;     // cudaMemGetInfo: total − free, all users of the device
  int64_t total = 0;
  // Spelled out: .cu files include this header and build as C++17.
  bool operator==(const DeviceMemory& o) const {
    return current == o.current && peak == o.peak && used == o.used && total == o.total;
  }
};

// The counts of a device (its cudaMemGetInfo read on it; the current device is left as it was).
DeviceMemory deviceMemory(int device);
// DeviceMemory::peak alone, from the count (no CUDA call: cheap enough for every step of every rank).
int64_t devicePeak(int device);
// The peak restarts from what is held now.
void resetDevicePeak(int device);

}  // namespace moescope::engine::cuda
