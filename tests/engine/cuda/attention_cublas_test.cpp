#include "engine/cuda/attention_cublas.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaAttentionCublas : public ::testing::Test {};
TYPED_TEST_SUITE(CudaAttentionCublas, StorageTypes, StorageTypeNames);

template <typename T>
void checkAttention(int B, int Tl, int NH, int D) {
  SCOPED_TRACE(testing::Message() << "B=" << B << " T=" << Tl << " NH=" << NH << " D=" << D);
  const size_t qkvSize = size_t(B) * Tl * 3 * NH * D, outSize = size_t(B) * Tl * NH * D;
  const size_t probsSize = size_t(B) * NH * Tl * Tl;
  const auto qkv = roundTo<T>(randomFloats(qkvSize, 111, -1.5f, 1.5f));
  const auto dout = roundTo<T>(randomFloats(outSize, 112));
  const auto dqkv0 = roundTo<T>(randomFloats(qkvSize, 113, -0.1f, 0.1f));
  DeviceBuffer<T> dQkv(qkvSize), dOut(outSize), dDout(outSize), dDqkv(qkvSize), dProbs(probsSize);
  DeviceBuffer<unsigned char> dWork(attentionCublasWorkspaceBytes(B, Tl, NH, D, sizeof(T)));
  uploadAs(dQkv, qkv);
  uploadAs(dDout, dout);
  uploadAs(dDqkv, dqkv0);
  dOut.poison();
  dProbs.poison();
  dWork.poison();
  CublasLt lt;
  attentionCublasForward(lt, dOut.get(), dProbs.get(), dQkv.get(), dWork.get(), B, Tl, NH, D, nullptr);
  attentionCublasBackward(lt, dDqkv.get(), dDout.get(), dQkv.get(), dProbs.get(), dWork.get(), B, Tl, NH, D,
                          nullptr);

  const std::vector<double> qd(qkv.begin(), qkv.end()), doutd(dout.begin(), dout.end());
  std::vector<double> out(outSize), att(probsSize), dqkv(dqkv0.begin(), dqkv0.end());
  cpu::attentionForward(out.data(), att.data(), qd.data(), B, Tl, NH, D);
  cpu::attentionBackward(dqkv.data(), doutd.data(), qd.data(), att.data(), B, Tl, NH, D);
  expectClose(downloadAsFloat(dOut), out, toleranceFor<T>({1e-5, 1e-4}, {2e-2, 1e-2}), "out");
  expectClose(downloadAsFloat(dProbs), att, toleranceFor<T>({1e-6, 1e-4}, {1e-3, 1e-2}), "probs");
  expectClose(downloadAsFloat(dDqkv), dqkv, toleranceFor<T>({1e-4, 1e-3}, {3e-2, 3e-2}), "dqkv");
}

TYPED_TEST(CudaAttentionCublas, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  checkAttention<TypeParam>(2, 64, 3, 32);
  checkAttention<TypeParam>(2, 70, 2, 48);  // sizes that are no multiple of 8
  checkAttention<TypeParam>(1, 40, 1, 128);
  checkAttention<TypeParam>(1, 1, 2, 16);     // one position
  checkAttention<TypeParam>(1, 1100, 1, 16);  // rows longer than a warp keeps in registers
}

}  // namespace
}  // namespace moescope::engine::cuda::test
