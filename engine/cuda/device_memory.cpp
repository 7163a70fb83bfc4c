#include "engine/cuda/device_memory.h"

#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <unordered_map>

#include "engine/cuda/cuda_check.h"

namespace moescope::engine::cuda {

namespace {

struct Counts {
  int64_t current = 0, peak = 0;
};

// Allocations are rare (buffers grow once, at the first steps), so one lock for all devices is enough.
struct Registry {
  std::mutex mutex;
  std::unordered_map<void*, std::pair<int, size_t>> blocks;  // pointer -> device, bytes
  std::map<int, Counts> devices;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void* deviceAlloc(size_t bytes) {
  int device = 0;
  MOESCOPE_CUDA_CHECK(cudaGetDevice(&device));
  void* p = nullptr;
  MOESCOPE_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 1 : bytes));
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.blocks[p] = {device, bytes};
  Counts& c = r.devices[device];
  c.current += static_cast<int64_t>(bytes);
  if (c.current > c.peak) c.peak = c.current;
  return p;
}

void deviceFree(void* p) noexcept {
  if (!p) return;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.blocks.find(p);
    if (it != r.blocks.end()) {
      r.devices[it->second.first].current -= static_cast<int64_t>(it->second.second);
      r.blocks.erase(it);
    }
  }
  cudaFree(p);
}

DeviceMemory deviceMemory(int device) {
  DeviceMemory m;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    const Counts& c = r.devices[device];
    m.current = c.current;
    m.peak = c.peak;
  }
  int previous = 0;
  MOESCOPE_CUDA_CHECK(cudaGetDevice(&previous));
  MOESCOPE_CUDA_CHECK(cudaSetDevice(device));
  size_t free = 0, total = 0;
  const cudaError_t status = cudaMemGetInfo(&free, &total);
  cudaSetDevice(previous);
  MOESCOPE_CUDA_CHECK(status);
  m.used = static_cast<int64_t>(total - free);
  m.total = static_cast<int64_t>(total);
  return m;
}

int64_t devicePeak(int device) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.devices.find(device);
  return it == r.devices.end() ? 0 : it->second.peak;
}

void resetDevicePeak(int device) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  Counts& c = r.devices[device];
  c.peak = c.current;
}

}  // namespace moescope::engine::cuda
