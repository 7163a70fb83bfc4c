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

}  // namespace
}  // namespace moescope::engine::cuda::test
