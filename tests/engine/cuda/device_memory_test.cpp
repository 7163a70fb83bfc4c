#include "engine/cuda/device_memory.h"

#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

TEST(CudaDeviceMemory, CountsTheCurrentAndThePeakBytes) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  int device = 0;
  MOESCOPE_CUDA_CHECK(cudaGetDevice(&device));
  const DeviceMemory before = deviceMemory(device);
  resetDevicePeak(device);
  void* a = deviceAlloc(3 << 20);
  void* b = deviceAlloc(5 << 20);
  const DeviceMemory both = deviceMemory(device);
  EXPECT_EQ(both.current, before.current + (8 << 20));
  EXPECT_EQ(both.peak, both.current);
  EXPECT_GE(both.used, both.current);  // the device counts the context and every other user too
  EXPECT_GT(both.total, both.used);
  deviceFree(b);
  void* c = deviceAlloc(1 << 20);
  const DeviceMemory after = deviceMemory(device);
  EXPECT_EQ(after.current, before.current + (4 << 20));
  EXPECT_EQ(after.peak, before.current + (8 << 20));
  EXPECT_EQ(devicePeak(device), after.peak);  // the peak alone, without asking the device
  resetDevicePeak(device);
  EXPECT_EQ(deviceMemory(device).peak, after.current);
  deviceFree(a);
  deviceFree(c);
  deviceFree(nullptr);
  EXPECT_EQ(deviceMemory(device).current, before.current);
}

TEST(CudaDeviceMemory, AFailedAllocationThrowsAndCountsNothing) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  int device = 0;
  MOESCOPE_CUDA_CHECK(cudaGetDevice(&device));
  const int64_t before = deviceMemory(device).current;
  EXPECT_THROW(deviceAlloc(size_t{1} << 60), CudaError);
  cudaGetLastError();  // clear the sticky-free allocation error
  EXPECT_EQ(deviceMemory(device).current, before);
}

}  // namespace
}  // namespace moescope::engine::cuda::test
