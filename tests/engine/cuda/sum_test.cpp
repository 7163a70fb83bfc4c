#include "engine/cuda/sum.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

// The loss sums: several arrays, one of a single element, into one accumulator, against a double sum.
TEST(CudaSum, AccumulatesIntoADeviceDouble) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const auto a = randomFloats(1000003, 41, 0, 10);
  const auto b = randomFloats(1, 42, -5, 5);
  DeviceBuffer<float> dA(a.size()), dB(b.size());
  DeviceBuffer<double> dTotal(1);
  dA.upload(a);
  dB.upload(b);
  dTotal.upload({2.5});
  accumulateSum(dTotal.get(), dA.get(), a.size(), nullptr);
  accumulateSum(dTotal.get(), dB.get(), b.size(), nullptr);
  accumulateSum(dTotal.get(), dB.get(), 0, nullptr);  // nothing
  double ref = 2.5;
  for (float v : a) ref += v;
  ref += b[0];
  EXPECT_NEAR(dTotal.download()[0], ref, 1e-5 * ref);
}

// The gradient norm's sums of squares: four elements an access where the array is 16-byte aligned (with a
// tail of 0-3 elements), one where it is not, against a double sum.
TEST(CudaSum, SumsOfSquaresAlignedOrNotWithEveryTail) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const auto a = randomFloats(4 * 65536 + 7, 43, -2, 2);
  DeviceBuffer<float> dA(a.size());
  dA.upload(a);
  DeviceBuffer<double> dTotal(1);
  for (const size_t offset : {size_t{0}, size_t{1}}) {
    for (const size_t n : {size_t{1}, size_t{3}, size_t{4}, size_t{5}, size_t{4 * 65536 + 6}}) {
      dTotal.upload({0.0});
      accumulateSumOfSquares(dTotal.get(), dA.get() + offset, n, nullptr);
      double ref = 0;
      for (size_t i = offset; i < offset + n; ++i) ref += double(a[i]) * a[i];
      EXPECT_NEAR(dTotal.download()[0], ref, 1e-5 * ref + 1e-12) << "offset " << offset << ", n " << n;
    }
  }
}

}  // namespace
}  // namespace moescope::engine::cuda::test
