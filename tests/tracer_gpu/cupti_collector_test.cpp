// CUPTI collection on a real GPU: records arrive, carry the launching span and a kernel's launch (grid,
// block, registers, shared memory), and sit on the host clock.
#include "tracer/gpu/cupti_collector.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <nccl.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <thread>
#include <vector>

#include "tests/tracer_gpu/test_kernels.h"
#include "tracer/span.h"

namespace moescope::tracer::gpu {
namespace {

int deviceCount() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

#define REQUIRE_GPUS(n)                                                                   \
  do {                                                                                    \
    int have = deviceCount();                                                             \
    if (have < (n)) GTEST_SKIP() << "needs " << (n) << " CUDA device(s), found " << have; \
  } while (0)

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

// n floats on the current device, freed at the end of the scope.
struct DeviceFloats {
  explicit DeviceFloats(size_t n) {
    if (cudaMalloc(&data, n * sizeof(float)) != cudaSuccess) data = nullptr;
  }
  ~DeviceFloats() { cudaFree(data); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  float* data = nullptr;
};

std::string listed(const std::vector<GpuRecord>& records) {
  std::string seen;
  for (const auto& r : records) seen += r.name + " (span " + std::to_string(r.span) + ")\n";
  return seen;
}

TEST(CuptiCollector, KernelAndMemcpyCarryTheirSpanOnTheHostClock) {
  REQUIRE_GPUS(1);
  auto collector = CuptiCollector::start();
  constexpr int n = 1 << 20;
  DeviceFloats xs(n), ys(n);
  float *x = xs.data, *y = ys.data;
  ASSERT_TRUE(x && y);
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

  int inSpan = 0, outside = 0, copies = 0;
  for (const auto& r : records) {
    EXPECT_LE(before, r.start) << r.name;
    EXPECT_LE(r.start, r.end) << r.name;
    EXPECT_LE(r.end, after) << r.name;
    if (r.kind == storage::GpuActivityKind::Kernel && r.name.find("saxpyKernel") != std::string::npos) {
      // The launch as written: <<<(n + 255) / 256, 256>>>, no shared memory.
      EXPECT_EQ(r.launch.grid_x, (n + 255) / 256);
      EXPECT_EQ(r.launch.grid_y, 1);
      EXPECT_EQ(r.launch.grid_z, 1);
      EXPECT_EQ(r.launch.block_x, 256);
      EXPECT_EQ(r.launch.block_y, 1);
      EXPECT_EQ(r.launch.block_z, 1);
      EXPECT_GT(r.launch.registers, 0);
      EXPECT_EQ(r.launch.shared_static, 0);
      EXPECT_EQ(r.launch.shared_dynamic, 0);
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
  EXPECT_EQ(inSpan, 1) << listed(records);
  EXPECT_EQ(outside, 1) << listed(records);
  EXPECT_EQ(copies, 1);
  EXPECT_EQ(collector->droppedRecords(), 0u);
}

// Both ways of tying records to spans: the innermost span open on the launching thread, 0 outside any
// span and on another thread, for kernels (launched with <<<>>>), memset and memcpy alike.
class CuptiCorrelation : public ::testing::TestWithParam<Correlation> {};

TEST_P(CuptiCorrelation, KernelsMemsetAndMemcpyCarryTheInnermostSpanOfTheirThread) {
  REQUIRE_GPUS(1);
  CollectorOptions options;
  options.correlation = GetParam();
  auto collector = CuptiCollector::start(options);
  EXPECT_EQ(collector->correlation(), GetParam());
  constexpr int n = 1 << 16;
  DeviceFloats xs(n), ys(n);
  float *x = xs.data, *y = ys.data;
  ASSERT_TRUE(x && y);
  std::vector<float> host(n, 1.0f);
  CUDA_OK(cudaDeviceSynchronize());

  // Each kernel waits for the one before, so that the saxpy records in start order are in launch order.
  CuptiCollector::pushSpan(11);
  CUDA_OK(cudaMemset(y, 0, n * sizeof(float)));
  CUDA_OK(cudaMemcpy(x, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_OK(launchSaxpy(1.0f, x, y, n, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  CuptiCollector::popSpan();
  CUDA_OK(launchSaxpy(2.0f, x, y, n, nullptr));  // outside any span
  CUDA_OK(cudaDeviceSynchronize());
  CuptiCollector::pushSpan(21);
  CuptiCollector::pushSpan(22);
  CUDA_OK(launchSaxpy(3.0f, x, y, n, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  CuptiCollector::popSpan();
  CUDA_OK(launchSaxpy(4.0f, x, y, n, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  cudaError_t other = cudaErrorUnknown;  // launched on a thread with no span open, while 21 is open here
  std::thread([&] {
    other = launchSaxpy(5.0f, x, y, n, nullptr);
    if (other == cudaSuccess) other = cudaDeviceSynchronize();
  }).join();
  CUDA_OK(other);
  CuptiCollector::popSpan();
  auto records = collector->drain(/*final=*/true);

  std::vector<uint64_t> kernelSpans;
  int memsets = 0, copies = 0;
  for (const auto& r : records) {
    if (r.kind == storage::GpuActivityKind::Kernel && r.name.find("saxpyKernel") != std::string::npos)
      kernelSpans.push_back(r.span);
    if (r.kind == storage::GpuActivityKind::Memset && r.bytes == int64_t{n} * 4) {
      ++memsets;
      EXPECT_EQ(r.span, 11u);
    }
    if (r.kind == storage::GpuActivityKind::Memcpy && r.bytes == int64_t{n} * 4) {
      ++copies;
      EXPECT_EQ(r.span, 11u);
    }
  }
  EXPECT_EQ(kernelSpans, (std::vector<uint64_t>{11, 0, 22, 21, 0})) << listed(records);
  EXPECT_EQ(memsets, 1) << listed(records);
  EXPECT_EQ(copies, 1) << listed(records);
  EXPECT_EQ(collector->unmatchedRecords(), 0u) << "records whose launching call no callback saw\n"
                                               << listed(records);
  EXPECT_EQ(collector->droppedRecords(), 0u);
}

INSTANTIATE_TEST_SUITE_P(BothWays, CuptiCorrelation,
                         ::testing::Values(Correlation::Callbacks, Correlation::ActivityRecords),
                         [](const ::testing::TestParamInfo<Correlation>& info) {
                           return std::string(correlationName(info.param));
                         });

// Launch calls kept (what `record` ties kernels to ranges with), both ways, with and without span
// correlation: every kernel, memset and memcpy has a watched call of the same correlation id, on the
// thread that made it (the OS thread id), entered before the work started; other calls are not kept.
// Each case needs a process of its own, as ctest runs them (and as `record` starts one collector per
// process): on an H200 (CUDA 13, 2026-12-03), after a collector that enabled whole-kind RUNTIME records
// (CuptiCorrelation's activity case) stopped, a later collector's per-call records stayed off in that
// process (0 launch calls); each case alone, or this suite alone, passes.
struct LaunchCallCase {
  LaunchCalls launchCalls;
  bool spans;
  Correlation correlation;
  const char* name;
};

class CuptiLaunchCalls : public ::testing::TestWithParam<LaunchCallCase> {};

TEST_P(CuptiLaunchCalls, EveryKernelHasItsLaunchCallOnItsThread) {
  REQUIRE_GPUS(1);
  CollectorOptions options;
  options.launchCalls = GetParam().launchCalls;
  options.spans = GetParam().spans;
  options.correlation = GetParam().correlation;
  auto collector = CuptiCollector::start(options);
  constexpr int n = 1 << 12;
  constexpr int kHere = 50, kThere = 10;
  DeviceFloats xs(n), ys(n);
  float *x = xs.data, *y = ys.data;
  ASSERT_TRUE(x && y);
  std::vector<float> host(n, 1.0f);
  CUDA_OK(cudaDeviceSynchronize());
  const int64_t here = ::gettid();
  CuptiCollector::pushSpan(7);
  CUDA_OK(cudaMemset(y, 0, n * sizeof(float)));
  CUDA_OK(cudaMemcpy(x, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  for (int i = 0; i < kHere; ++i) CUDA_OK(launchSaxpy(1.0f, x, y, n, nullptr));
  CuptiCollector::popSpan();
  int64_t there = 0;
  cudaError_t other = cudaErrorUnknown;
  std::thread([&] {
    there = ::gettid();
    other = cudaSuccess;
    for (int i = 0; i < kThere && other == cudaSuccess; ++i) other = launchSaxpy(2.0f, x, y, n, nullptr);
  }).join();
  CUDA_OK(other);
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<GpuRecord> records = collector->drain(/*final=*/true);
  const std::vector<LaunchCall> calls = collector->drainLaunchCalls();

  std::multimap<uint32_t, const LaunchCall*> byCorrelation;
  for (const LaunchCall& c : calls) {
    byCorrelation.emplace(c.correlation, &c);
    const std::string name = c.name ? c.name : "";
    EXPECT_EQ(name.find("Synchronize"), std::string::npos) << name << " kept, not a launching call";
    EXPECT_LE(c.start, c.end) << name;
  }
  std::map<int64_t, int> kernelsByThread;
  int memsets = 0, copies = 0;
  for (const GpuRecord& r : records) {
    const bool saxpy =
        r.kind == storage::GpuActivityKind::Kernel && r.name.find("saxpyKernel") != std::string::npos;
    const bool memset = r.kind == storage::GpuActivityKind::Memset && r.bytes == int64_t{n} * 4;
    const bool copy = r.kind == storage::GpuActivityKind::Memcpy && r.bytes == int64_t{n} * 4;
    if (!saxpy && !memset && !copy) continue;
    memsets += memset;
    copies += copy;
    const auto [first, last] = byCorrelation.equal_range(r.correlation);
    ASSERT_NE(first, last) << r.name << ": no launch call of correlation " << r.correlation << " among "
                           << calls.size();
    const LaunchCall& c = *first->second;
    EXPECT_LE(c.start, r.start) << r.name << " started before its call entered";
    const std::string name = c.name ? c.name : "";
    if (saxpy) {
      EXPECT_NE(name.find("aunch"), std::string::npos) << name;
      ++kernelsByThread[c.thread];
    }
    if (memset) {
      EXPECT_NE(name.find("emset"), std::string::npos) << name;
    }
    if (copy) {
      EXPECT_NE(name.find("emcpy"), std::string::npos) << name;
    }
    EXPECT_EQ(r.span, GetParam().spans ? 7u * (memset || copy || c.thread == here) : 0u) << r.name;
  }
  EXPECT_EQ(kernelsByThread, (std::map<int64_t, int>{{here, kHere}, {there, kThere}}));
  EXPECT_EQ(memsets, 1) << listed(records);
  EXPECT_EQ(copies, 1) << listed(records);
  EXPECT_EQ(collector->droppedRecords(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Ways, CuptiLaunchCalls,
    ::testing::Values(LaunchCallCase{LaunchCalls::Activity, false, Correlation::Callbacks, "activity"},
                      LaunchCallCase{LaunchCalls::Callbacks, false, Correlation::Callbacks, "callbacks"},
                      LaunchCallCase{LaunchCalls::Activity, true, Correlation::Callbacks, "activity_spans"},
                      LaunchCallCase{LaunchCalls::Activity, true, Correlation::ActivityRecords,
                                     "activity_span_records"}),
    [](const ::testing::TestParamInfo<LaunchCallCase>& info) { return std::string(info.param.name); });

// By default nothing asks CUPTI for its buffers during the run: a full one comes in by itself, and its
// records reach a drain before the final one, tied to their spans like the rest.
TEST(CuptiCollector, FullBuffersArriveDuringTheRunWithTheirSpans) {
  REQUIRE_GPUS(1);
  CollectorOptions options;
  options.bufferBytes = 64 << 10;  // a few hundred kernel records a buffer
  ASSERT_EQ(options.flush, Flush::WhenFull);
  auto collector = CuptiCollector::start(options);
  constexpr int n = 1 << 10;
  constexpr int kLaunches = 4000;
  DeviceFloats xs(n), ys(n);
  ASSERT_TRUE(xs.data && ys.data);
  size_t early = 0, inSpan = 0;
  auto count = [&](const std::vector<GpuRecord>& records) {
    for (const auto& r : records)
      if (r.kind == storage::GpuActivityKind::Kernel && r.name.find("saxpyKernel") != std::string::npos) {
        EXPECT_EQ(r.span, 100u);
        inSpan += r.span == 100u;
      }
  };
  CuptiCollector::pushSpan(100);
  for (int i = 0; i < kLaunches; ++i) {
    CUDA_OK(launchSaxpy(1.0f, xs.data, ys.data, n, nullptr));
    if (i % 500 == 499) {
      CUDA_OK(cudaDeviceSynchronize());
      auto records = collector->drain(/*final=*/false);
      early += records.size();
      count(records);
    }
  }
  CuptiCollector::popSpan();
  CUDA_OK(cudaDeviceSynchronize());
  count(collector->drain(/*final=*/true));
  EXPECT_GT(early, 0u) << "no buffer came in before the final drain";
  EXPECT_EQ(inSpan, size_t{kLaunches});
  EXPECT_EQ(collector->unmatchedRecords(), 0u);
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
    ASSERT_EQ(ncclAllReduce(buffers[d], buffers[d], n, ncclFloat, ncclSum, comms[d], streams[d]),
              ncclSuccess);
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
