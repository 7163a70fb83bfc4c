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
void checkFused(int n, int V, bool twoReads = false) {
  SCOPED_TRACE(testing::Message() << "fused n=" << n << " V=" << V << (twoReads ? " (two reads)" : ""));
  const auto logits = roundTo<T>(randomFloats(size_t(n) * V, 61, -4, 4));
  const auto targets = randomIds(n, V, 62);
  const float scale = 0.5f;
  DeviceBuffer<T> dLogits(logits.size());
  DeviceBuffer<int32_t> dTargets(n);
  DeviceBuffer<float> dLosses(n);
  uploadAs(dLogits, logits);
  dTargets.upload(targets);
  dLosses.poison();
  if (twoReads) {
    crossEntropyForwardBackwardTwoReads(dLosses.get(), dLogits.get(), dTargets.get(), scale, n, V, nullptr);
  } else {
    crossEntropyForwardBackward(dLosses.get(), dLogits.get(), dTargets.get(), scale, n, V, nullptr);
  }
  const std::vector<double> ld(logits.begin(), logits.end());
  std::vector<double> losses(n), d(ld.size(), 0.0);
  cpu::crossEntropyForward(losses.data(), ld.data(), targets.data(), n, V);
  cpu::crossEntropyBackward(d.data(), ld.data(), targets.data(), double(scale), n, V);
  expectClose(dLosses.download(), losses, {1e-5, 1e-5}, "losses");
  expectClose(downloadAsFloat(dLogits), d, toleranceFor<T>({1e-6, 1e-4}, {1e-4, 1e-2}), "dlogits");
}

TYPED_TEST(CudaCrossEntropy, FusedForwardBackwardMatchesTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  // bf16 rows held in registers: every block size of the single-read kernel (1, 2, 4 and 8 vectors of
  // eight per thread), the largest row it takes, a row of one vector
  for (const int V : {8, 1000, 8200, 16400, 50304, 57344}) checkFused<TypeParam>(13, V);
  // rows it does not take, read twice: V not a multiple of 8, V beyond 57,344
  checkFused<TypeParam>(5, 1001);
  checkFused<TypeParam>(2, 57352);
  checkFused<TypeParam>(7, 50304, /*twoReads=*/true);
}

TYPED_TEST(CudaCrossEntropy, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  checkCrossEntropy<TypeParam>(13, 1000);
  checkCrossEntropy<TypeParam>(3, 50304);  // the benchmark model's vocabulary
}

}  // namespace
}  // namespace moescope::engine::cuda::test
