#include "engine/cuda/embedding.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaEmbedding : public ::testing::Test {};
TYPED_TEST_SUITE(CudaEmbedding, StorageTypes, StorageTypeNames);

TYPED_TEST(CudaEmbedding, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  using T = TypeParam;
  const int B = 3, Tl = 17, C = 40, V = 50;
  const auto tokens = randomIds(B * Tl, V, 61);
  const auto wte = roundTo<T>(randomFloats(V * C, 62));
  const auto wpe = roundTo<T>(randomFloats(Tl * C, 63));
  const auto dout = roundTo<T>(randomFloats(B * Tl * C, 64));
  const auto dwte0 = randomFloats(V * C, 65);
  const auto dwpe0 = randomFloats(Tl * C, 66);
  DeviceBuffer<int32_t> dTokens(tokens.size());
  DeviceBuffer<T> dWte(wte.size()), dWpe(wpe.size()), dOut(dout.size()), dDout(dout.size());
  DeviceBuffer<float> dDwte(wte.size()), dDwpe(wpe.size());
  dTokens.upload(tokens);
  uploadAs(dWte, wte);
  uploadAs(dWpe, wpe);
  uploadAs(dDout, dout);
  dDwte.upload(dwte0);
  dDwpe.upload(dwpe0);
  dOut.poison();
  embeddingForward(dOut.get(), dTokens.get(), dWte.get(), dWpe.get(), B, Tl, C, nullptr);
  embeddingBackward(dDwte.get(), dDwpe.get(), dDout.get(), dTokens.get(), B, Tl, C, nullptr);

  std::vector<float> out(dout.size()), dwte = dwte0, dwpe = dwpe0;
  cpu::embeddingForward(out.data(), tokens.data(), wte.data(), wpe.data(), B, Tl, C);
  cpu::embeddingBackward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, Tl, C);
  expectClose(downloadAsFloat(dOut), out, toleranceFor<T>({1e-6, 1e-6}, {1e-2, 8e-3}), "out");
  expectClose(dDwte.download(), dwte, {1e-5, 1e-5}, "dwte");
  expectClose(dDwpe.download(), dwpe, {1e-5, 1e-5}, "dwpe");
}

}  // namespace
}  // namespace moescope::engine::cuda::test
