// What the CUDA kernel benchmarks share: deterministic device fills, an arena of device buffers freed at
// exit, and the timer that prints the Markdown table (CUDA events around N calls after 3 warm-up calls).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/cuda/cuda_check.h"

namespace moescope::bench {

// Deterministic pseudo-random fill in [lo, hi), on the device.
template <typename T>
__global__ void fillKernel(T* x, size_t n, uint32_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    const float u = (h & 0xffffff) / 16777216.0f;
    if constexpr (std::is_same_v<T, float>) {
      x[i] = lo + (hi - lo) * u;
    } else {
      x[i] = __float2bfloat16(lo + (hi - lo) * u);
    }
  }
}

static __global__ void fillIdsKernel(int32_t* x, size_t n, uint32_t seed, int limit) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2246822519u ^ seed;
    h ^= h >> 13;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    x[i] = static_cast<int32_t>(h % static_cast<uint32_t>(limit));
  }
}

// Device memory for the whole run, freed at exit.
struct Arena {
  std::vector<void*> blocks;
  ~Arena() {
    for (void* p : blocks) cudaFree(p);
  }
  template <typename T>
  T* alloc(size_t n) {
    void* p = nullptr;
    MOESCOPE_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
    blocks.push_back(p);
    return static_cast<T*>(p);
  }
  template <typename T>
  T* random(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    T* p = alloc<T>(n);
    fillKernel<T><<<1024, 256>>>(p, n, seed, lo, hi);
    MOESCOPE_CUDA_CHECK_LAUNCH();
    return p;
  }
  int32_t* ids(size_t n, uint32_t seed, int limit) {
    int32_t* p = alloc<int32_t>(n);
    fillIdsKernel<<<1024, 256>>>(p, n, seed, limit);
    MOESCOPE_CUDA_CHECK_LAUNCH();
    return p;
  }
};

struct Row {
  std::string kernel;
  std::string shape;
  double ms;
  double rate;
  const char* unit;
};

class Bench {
 public:
  Bench(int iters, std::string only, cudaStream_t stream)
      : iters_(iters), only_(std::move(only)), stream_(stream) {
    MOESCOPE_CUDA_CHECK(cudaEventCreate(&start_));
    MOESCOPE_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~Bench() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }

  // flops > 0: the rate is TFLOP/s; otherwise bytes give GB/s.
  void run(const std::string& kernel, const std::string& shape, double flops, double bytes,
           const std::function<void()>& call) {
    if (kernel.find(only_) == std::string::npos) return;
    for (int i = 0; i < 3; ++i) call();
    MOESCOPE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    MOESCOPE_CUDA_CHECK(cudaEventRecord(start_, stream_));
    for (int i = 0; i < iters_; ++i) call();
    MOESCOPE_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    MOESCOPE_CUDA_CHECK(cudaEventSynchronize(stop_));
    float total = 0;
    MOESCOPE_CUDA_CHECK(cudaEventElapsedTime(&total, start_, stop_));
    const double ms = total / iters_;
    const double rate = flops > 0 ? flops / (ms * 1e-3) / 1e12 : bytes / (ms * 1e-3) / 1e9;
    rows_.push_back({kernel, shape, ms, rate, flops > 0 ? "TFLOP/s" : "GB/s"});
    std::fprintf(stderr, "%-34s %9.3f ms\n", kernel.c_str(), ms);
  }

  void print(const char* precision) const {
    std::printf("| kernel (%s) | shape | ms per call | rate |\n|---|---|---:|---:|\n", precision);
    for (const Row& r : rows_) {
      std::printf("| %s | %s | %.3f | %.1f %s |\n", r.kernel.c_str(), r.shape.c_str(), r.ms, r.rate, r.unit);
    }
  }

 private:
  int iters_;
  std::string only_;  // run only the kernels whose name contains it
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::vector<Row> rows_;
};

}  // namespace moescope::bench
