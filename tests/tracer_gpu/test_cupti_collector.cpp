// CUPTI collection on a real GPU: records arrive, carry the launching span, and sit on the host clock.
#include "tracer/gpu/cupti_collector.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include <algorithm>
#include <vector>

#include "tests/tracer_gpu/test_kernels.h"
#include "tracer/span.h"

namespace moescope::tracer::gpu {
namespace {

int deviceCount() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

#define REQUIRE_GPUS(n)                                                                         \
  do {                                                                                         \
    int have = deviceCount();                                                                  \
    if (have < (n)) GTEST_SKIP() << "needs " << (n) << " CUDA device(s), found " << have;      \
  } while (0)

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

TEST(CuptiCollector, KernelAndMemcpyCarryTheirSpanOnTheHostClock) {
  REQUIRE_GPUS(1);
  auto collector = CuptiCollector::start();
  constexpr int n = 1 << 20;
  float *x = nullptr, *y = nullptr;
  CUDA_OK(cudaMalloc(&x, n * sizeof(float)));
  CUDA_OK(cudaMalloc(&y, n * sizeof(float)));
  std::vector<float> host(n, 1.0f);
  CUDA_OK(cudaDeviceSynchronize());
  int64_t before = nowNs();
  CuptiCollector::pushSpan(42);
  CUDA_OK(cudaMemcpy(x, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_OK(launchSaxpy(2.0f, x, y, n, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  CuptiCollector::popSpan();
  CUDA_OK(launchSaxpy(3.0f, x, y, n, nullptr));  // outside any span
  CUDA_OK(cudaDeviceSynchronize());
  int64_t after = nowNs();
  auto records = collector->drain(/*final=*/true);
  cudaFree(x);
  cudaFree(y);

  int inSpan = 0, outside = 0, copies = 0;
  for (const auto& r : records) {
    EXPECT_LE(before, r.start) << r.name;
    EXPECT_LE(r.start, r.end) << r.name;
    EXPECT_LE(r.end, after) << r.name;
    if (r.kind == storage::GpuActivityKind::Kernel && r.name.find("saxpyKernel") != std::string::npos) {
      if (r.span == 42) {
        ++inSpan;
      } else {
        ++outside;
        EXPECT_EQ(r.span, 0u);
      }
    }
    if (r.kind == storage::GpuActivityKind::Memcpy && r.span == 42) {
      ++copies;
      EXPECT_EQ(r.bytes, int64_t{n} * 4);
    }
  }
  std::string seen;
  for (const auto& r : records) seen += r.name + " (span " + std::to_string(r.span) + ")\n";
  EXPECT_EQ(inSpan, 1) << seen;
  EXPECT_EQ(outside, 1) << seen;
  EXPECT_EQ(copies, 1);
  EXPECT_EQ(collector->droppedRecords(), 0u);
}

TEST(CuptiCollector, NcclAllReduceKernelsCarryTheirSpan) {
  REQUIRE_GPUS(2);
  auto collector = CuptiCollector::start();
  ncclComm_t comms[2];
  int devices[2] = {0, 1};
  ASSERT_EQ(ncclCommInitAll(comms, 2, devices), ncclSuccess);
  constexpr size_t n = 1 << 22;
  float* buffers[2];
  cudaStream_t streams[2];
  for (int d = 0; d < 2; ++d) {
    CUDA_OK(cudaSetDevice(d));
    CUDA_OK(cudaMalloc(&buffers[d], n * sizeof(float)));
    CUDA_OK(cudaMemset(buffers[d], 0, n * sizeof(float)));
    CUDA_OK(cudaStreamCreate(&streams[d]));
  }
  CuptiCollector::pushSpan(7);
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  for (int d = 0; d < 2; ++d)
    ASSERT_EQ(ncclAllReduce(buffers[d], buffers[d], n, ncclFloat, ncclSum, comms[d], streams[d]), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  CuptiCollector::popSpan();
  for (int d = 0; d < 2; ++d) {
    CUDA_OK(cudaSetDevice(d));
    CUDA_OK(cudaStreamSynchronize(streams[d]));
  }
  auto records = collector->drain(true);
  std::vector<int> perDevice(2, 0);
  for (const auto& r : records)
    if (r.name.find("AllReduce") != std::string::npos && r.span == 7) {
      perDevice.at(r.device) += 1;
    }
  EXPECT_GE(perDevice[0], 1);
  EXPECT_GE(perDevice[1], 1);
  for (int d = 0; d < 2; ++d) {
    ncclCommDestroy(comms[d]);
    cudaSetDevice(d);
    cudaFree(buffers[d]);
    cudaStreamDestroy(streams[d]);
  }
}

}  // namespace
}  // namespace moescope::tracer::gpu
