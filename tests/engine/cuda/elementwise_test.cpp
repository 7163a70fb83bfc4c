#include "engine/cuda/elementwise.h"

#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaElementwise : public ::testing::Test {};
TYPED_TEST_SUITE(CudaElementwise, StorageTypes, StorageTypeNames);

TYPED_TEST(CudaElementwise, AddInPlace) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  using T = TypeParam;
  const size_t n = 5000;
  const auto y0 = roundTo<T>(randomFloats(n, 11));
  const auto x = roundTo<T>(randomFloats(n, 12));
  DeviceBuffer<T> dY(n), dX(n);
  uploadAs(dY, y0);
  uploadAs(dX, x);
  addInPlace(dY.get(), dX.get(), n, nullptr);
  std::vector<double> ref(n);
  for (size_t i = 0; i < n; ++i) ref[i] = double(y0[i]) + x[i];
  expectClose(downloadAsFloat(dY), ref, toleranceFor<T>({1e-6, 1e-6}, {1e-2, 8e-3}), "y");
}

TEST(CudaConvert, Bf16RoundTripAndAccumulate) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const size_t n = 3000;
  const auto x = randomFloats(n, 13, -100, 100);
  DeviceBuffer<float> dX(n), dBack(n), dAcc(n);
  DeviceBuffer<Bf16> dB(n);
  dX.upload(x);
  dB.poison();
  dBack.poison();
  convertToBf16(dB.get(), dX.get(), n, nullptr);
  convertToFloat(dBack.get(), dB.get(), n, nullptr);
  const auto acc0 = randomFloats(n, 14);
  dAcc.upload(acc0);
  accumulateToFloat(dAcc.get(), dB.get(), n, nullptr);
  const auto back = dBack.download();
  const auto acc = dAcc.download();
  for (size_t i = 0; i < n; ++i) {
    const float rounded = bf16BitsToFloat(floatToBf16Bits(x[i]));
    ASSERT_EQ(back[i], rounded) << i;  // round to nearest even, bit for bit
    ASSERT_EQ(acc[i], acc0[i] + rounded) << i;
  }
}

}  // namespace
}  // namespace moescope::engine::cuda::test
