#include "engine/cuda/global_norm.h"

#include "engine/cpu/ops.h"
#include "engine/cuda/sum.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

TEST(CudaGlobalNorm, SumOfSquaresOverTwoTensorsAndClipCoefficient) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const auto a = randomFloats(1000003, 31);
  const auto b = randomFloats(777, 32, -10, 10);
  DeviceBuffer<float> dA(a.size()), dB(b.size()), dCoef(1), dCoefOff(1);
  DeviceBuffer<double> dTotal(1);
  dA.upload(a);
  dB.upload(b);
  dTotal.upload({0.0});
  dCoef.poison();
  dCoefOff.poison();
  accumulateSumOfSquares(dTotal.get(), dA.get(), a.size(), nullptr);
  accumulateSumOfSquares(dTotal.get(), dB.get(), b.size(), nullptr);
  clipCoefficientDevice(dCoef.get(), dTotal.get(), 1.0, nullptr);
  clipCoefficientDevice(dCoefOff.get(), dTotal.get(), 0.0, nullptr);
  const double ref = cpu::sumOfSquares(a.data(), a.size()) + cpu::sumOfSquares(b.data(), b.size());
  const double total = dTotal.download()[0];
  EXPECT_NEAR(total, ref, 1e-5 * ref);
  EXPECT_NEAR(dCoef.download()[0], cpu::clipCoefficient(std::sqrt(ref), 1.0), 1e-6);
  EXPECT_EQ(dCoefOff.download()[0], 1.0f);
}

}  // namespace
}  // namespace moescope::engine::cuda::test
