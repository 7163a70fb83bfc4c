#include "engine/cuda/cross_entropy.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaCrossEntropy : public ::testing::Test {};
TYPED_TEST_SUITE(CudaCrossEntropy, StorageTypes, StorageTypeNames);

template <typename T>
void checkCrossEntropy(int n, int V) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " V=" << V);
  const auto logits = roundTo<T>(randomFloats(size_t(n) * V, 51, -4, 4));
  const auto targets = randomIds(n, V, 52);
  const auto d0 = roundTo<T>(randomFloats(size_t(n) * V, 53, -1e-2f, 1e-2f));
  const float scale = 1.0f;  // a unit scale keeps the gradient visible next to d0 in bf16
  DeviceBuffer<T> dLogits(logits.size()), dD(logits.size());
  DeviceBuffer<int32_t> dTargets(n);
  DeviceBuffer<float> dLosses(n);
  uploadAs(dLogits, logits);
  uploadAs(dD, d0);
  dTargets.upload(targets);
  dLosses.poison();
  crossEntropyForward(dLosses.get(), dLogits.get(), dTargets.get(), n, V, nullptr);
  crossEntropyBackward(dD.get(), dLogits.get(), dTargets.get(), scale, n, V, nullptr);

  const std::vector<double> ld(logits.begin(), logits.end());
  std::vector<double> losses(n), d(d0.begin(), d0.end());
  cpu::crossEntropyForward(losses.data(), ld.data(), targets.data(), n, V);
  cpu::crossEntropyBackward(d.data(), ld.data(), targets.data(), double(scale), n, V);
  expectClose(dLosses.download(), losses, {1e-5, 1e-5}, "losses");
  expectClose(downloadAsFloat(dD), d, toleranceFor<T>({1e-6, 1e-4}, {1e-4, 1e-2}), "dlogits");
}

template <typename T>
void checkFused(int n, int V) {
  SCOPED_TRACE(testing::Message() << "fused n=" << n << " V=" << V);
  const auto logits = roundTo<T>(randomFloats(size_t(n) * V, 61, -4, 4));
  const auto targets = randomIds(n, V, 62);
  const float scale = 0.5f;
  DeviceBuffer<T> dLogits(logits.size());
  DeviceBuffer<int32_t> dTargets(n);
  DeviceBuffer<float> dLosses(n);
  uploadAs(dLogits, logits);
  dTargets.upload(targets);
  dLosses.poison();
  crossEntropyForwardBackward(dLosses.get(), dLogits.get(), dTargets.get(), scale, n, V, nullptr);
  const std::vector<double> ld(logits.begin(), logits.end());
  std::vector<double> losses(n), d(ld.size(), 0.0);
  cpu::crossEntropyForward(losses.data(), ld.data(), targets.data(), n, V);
  cpu::crossEntropyBackward(d.data(), ld.data(), targets.data(), double(scale), n, V);
  expectClose(dLosses.download(), losses, {1e-5, 1e-5}, "losses");
  expectClose(downloadAsFloat(dLogits), d, toleranceFor<T>({1e-6, 1e-4}, {1e-4, 1e-2}), "dlogits");
}

TYPED_TEST(CudaCrossEntropy, FusedForwardBackwardMatchesTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  checkFused<TypeParam>(13, 1000);
  checkFused<TypeParam>(3, 50304);
}

TYPED_TEST(CudaCrossEntropy, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  checkCrossEntropy<TypeParam>(13, 1000);
  checkCrossEntropy<TypeParam>(3, 50304);  // the benchmark model's vocabulary
}

}  // namespace
}  // namespace moescope::engine::cuda::test
