#include "engine/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_stage.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/memory_estimate.h"
#include "engine/cuda/nccl_communicator.h"
#include "engine/engine_error.h"

namespace moescope::engine::cuda {

namespace {

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

// What NCCL, cuBLASLt and the CUDA context take beside the estimate.
constexpr int64_t kReserveBytes = int64_t{2} << 30;

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaKernelOptions& options, CudaPlacement placement)
      : options_(options), placement_(std::move(placement)) {}
  std::string name() const override { return "cuda"; }

  std::string devices(const Config& config) const override {
    cudaDeviceProp prop{};
    std::string gpu = "GPU";
    if (cudaGetDeviceProperties(&prop, placement_.first_device) == cudaSuccess) gpu = prop.name;
    return std::to_string(config.worldSize()) + " x " + gpu + " (" +
           std::string(precisionName(config.train.precision)) + ")";
  }

  int32_t device(const RankCoord& coord) const override {
    return placement_.first_device + coord.rank - placement_.first_rank;
  }

  void check(const Config& config) const override {
    const int have = deviceCount();
    if (placement_.ranks >= 0) {
      // A launcher's process: its own ranks on its node's GPUs.
      const int last = placement_.first_device + placement_.ranks;
      if (last > have) {
        throw InputError("--backend cuda: process " + std::to_string(placement_.processes.process) +
                         " runs its " + std::to_string(placement_.ranks) + " rank(s) on GPUs " +
                         std::to_string(placement_.first_device) + ".." + std::to_string(last - 1) +
                         " (by its local rank), this node has " + std::to_string(have) + " GPU(s)");
      }
    } else if (const int64_t need = config.worldSize(); need > have) {
      throw InputError("--backend cuda: the layout needs " + std::to_string(need) +
                       " GPUs (pp x tp x dp = " + std::to_string(config.parallel.pp) + " x " +
                       std::to_string(config.parallel.tp) + " x " + std::to_string(config.parallel.dp) +
                       "), this machine has " + std::to_string(have));
    }
    try {
      checkMemory(config);
    } catch (const CudaError& e) {
      throw InputError(std::string("--backend cuda: ") + e.what());
    }
  }

  void checkMemory(const Config& config) const {
    const Layout layout(config);
    const int first = placement_.ranks >= 0 ? placement_.first_rank : 0;
    const int end = placement_.ranks >= 0 ? first + placement_.ranks : layout.worldSize();
    for (int r = first; r < end; ++r) {
      size_t free = 0, total = 0;
      const int gpu = device(layout.coord(r));
      MOESCOPE_CUDA_CHECK(cudaSetDevice(gpu));
      const MemoryEstimate est = estimateMemory(config, layout, layout.coord(r), options_);
      MOESCOPE_CUDA_CHECK(cudaMemGetInfo(&free, &total));
      if (est.totalBytes() + kReserveBytes > static_cast<int64_t>(free)) {
        throw InputError("--backend cuda: the model does not fit: rank " + std::to_string(r) +
                         " needs about " + gib(est.totalBytes()) + " on GPU " + std::to_string(gpu) + " (" +
                         std::to_string(est.parameters) + " parameters with gradients and Adam state " +
                         gib(est.state_bytes) + ", activations " + gib(est.activation_bytes) + "), " +
                         gib(static_cast<int64_t>(free)) + " free of " + gib(static_cast<int64_t>(total)));
      }
    }
  }

  // A run's world: its devices' peaks start again from what they hold now.
  std::unique_ptr<CommWorld> makeWorld(int size) override {
    // Ranks of other processes get the device they would have here; they are never used.
    std::vector<int> devices(static_cast<size_t>(size));
    for (int r = 0; r < size; ++r)
      devices[static_cast<size_t>(r)] = placement_.first_device + r - placement_.first_rank;
    local_ = placement_.ranks >= 0 ? placement_.ranks : size;
    for (int i = 0; i < local_; ++i) resetDevicePeak(placement_.first_device + i);
    return std::make_unique<NcclWorld>(devices, placement_.processes);
  }

  int64_t peakMemoryBytes() const override {
    int64_t most = 0;
    for (int i = 0; i < local_; ++i) most = std::max(most, devicePeak(placement_.first_device + i));
    return most;
  }

  int64_t rankPeakMemoryBytes(const RankCoord& coord) const override { return devicePeak(device(coord)); }

  std::unique_ptr<StageExecutor> makeExecutor(const RankSetup& setup) override {
    return makeCudaStage(setup, device(setup.coord), options_);
  }

 private:
  CudaKernelOptions options_;
  CudaPlacement placement_;
  int local_ = 0;  // this process's ranks in the last world made
};

}  // namespace

int deviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

std::unique_ptr<Backend> makeCudaBackend(const CudaKernelOptions& options, CudaPlacement placement) {
  return std::make_unique<CudaBackend>(options, std::move(placement));
}

}  // namespace moescope::engine::cuda
