#include "engine/cuda/router.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaRouter : public ::testing::Test {};
TYPED_TEST_SUITE(CudaRouter, StorageTypes, StorageTypeNames);

TYPED_TEST(CudaRouter, SoftmaxTopKMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  using T = TypeParam;
  const int n = 1000, E = 40, K = 3;  // E > 32: lanes hold several experts
  const auto logits = roundTo<T>(randomFloats(size_t(n) * E, 71, -3, 3));
  DeviceBuffer<T> dLogits(logits.size());
  DeviceBuffer<float> dP(logits.size());
  DeviceBuffer<int32_t> dChoice(size_t(n) * K);
  uploadAs(dLogits, logits);
  dP.poison();
  dChoice.poison();
  routerSoftmaxTopK(dP.get(), dChoice.get(), dLogits.get(), n, E, K, nullptr);

  std::vector<double> p(logits.size());
  const std::vector<double> ld(logits.begin(), logits.end());
  cpu::softmaxForward(p.data(), ld.data(), n, E);
  const auto gotP = dP.download();
  expectClose(gotP, p, {1e-7, 1e-5}, "p");
  // The picks, judged on the kernel's own probabilities, so that rounding cannot reorder near-ties.
  std::vector<int32_t> choice(size_t(n) * K);
  cpu::routerTopK(choice.data(), gotP.data(), n, E, K);
  EXPECT_EQ(dChoice.download(), choice);
}

TEST(CudaRouter, TopKBreaksTiesByLowerIndex) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const int n = 2, E = 4, K = 3;
  const std::vector<float> logits = {1, 1, 1, 1, 0, 2, 0, 2};
  DeviceBuffer<float> dLogits(logits.size()), dP(logits.size());
  DeviceBuffer<int32_t> dChoice(n * K);
  dLogits.upload(logits);
  routerSoftmaxTopK(dP.get(), dChoice.get(), dLogits.get(), n, E, K, nullptr);
  EXPECT_EQ(dChoice.download(), (std::vector<int32_t>{0, 1, 2, 1, 3, 0}));
}

// keep, loads and drops against the CPU reference for the given picks and capacity
void checkCapacity(const std::vector<int32_t>& choice, int n, int E, int K, int capacity) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " E=" << E << " K=" << K << " capacity=" << capacity);
  DeviceBuffer<int32_t> dChoice(choice.size()), dLoad(E), dDropped(1);
  DeviceBuffer<uint8_t> dKeep(choice.size());
  dChoice.upload(choice);
  dKeep.poison();
  dLoad.poison();
  dDropped.poison();
  routerCapacity(dKeep.get(), dLoad.get(), dDropped.get(), dChoice.get(), n, E, K, capacity, nullptr);
  std::vector<uint8_t> keep(choice.size());
  std::vector<int32_t> load(E);
  const int dropped = cpu::routerCapacity(keep.data(), load.data(), choice.data(), n, E, K, capacity);
  EXPECT_EQ(dKeep.download(), keep);
  EXPECT_EQ(dLoad.download(), load);
  EXPECT_EQ(dDropped.download()[0], dropped);
}

TEST(CudaRouter, CapacityFollowsModelOrder) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  // the hand-built case of the CPU test: first choices of all tokens before any second choice
  checkCapacity({0, 1, 0, 2, 0, 1, 1, 0, 2, 0}, 5, 3, 2, 2);
  // skewed random picks over several 1024-token chunks, with and without a limit
  const int n = 3000, E = 16, K = 2;
  auto p = randomFloats(size_t(n) * E, 72, 0, 1);
  for (int i = 0; i < n; ++i) p[size_t(i) * E + 3] += 0.5f;  // expert 3 is popular
  std::vector<int32_t> choice(size_t(n) * K);
  cpu::routerTopK(choice.data(), p.data(), n, E, K);
  checkCapacity(choice, n, E, K, cpu::expertCapacity(1.25, n, K, E));
  checkCapacity(choice, n, E, K, 7);
  checkCapacity(choice, n, E, K, -1);
}

TEST(CudaRouter, SoftmaxBackwardMatchesTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  const int n = 500, E = 48;
  std::vector<float> p(size_t(n) * E);
  const auto logits = randomFloats(p.size(), 73, -2, 2);
  cpu::softmaxForward(p.data(), logits.data(), n, E);
  const auto dp = randomFloats(p.size(), 74);
  const auto dl0 = randomFloats(p.size(), 75);
  DeviceBuffer<float> dP(p.size()), dDp(p.size()), dDl(p.size());
  dP.upload(p);
  dDp.upload(dp);
  dDl.upload(dl0);
  routerSoftmaxBackward(dDl.get(), dDp.get(), dP.get(), n, E, nullptr);
  std::vector<float> dl = dl0;
  cpu::softmaxBackward(dl.data(), dp.data(), p.data(), n, E);
  expectClose(dDl.download(), dl, {1e-6, 1e-5}, "dlogits");
}

}  // namespace
}  // namespace moescope::engine::cuda::test
