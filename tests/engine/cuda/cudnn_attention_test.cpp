#include "engine/cuda/cudnn_attention.h"

#include <cstdio>

#include "engine/cpu/ops.h"
#include "engine/cuda/flash_attention.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

#define MOESCOPE_SKIP_WITHOUT_CUDNN() \
  if (!cudnnAttentionAvailable()) GTEST_SKIP() << "no cuDNN 9: " << cudnnAttentionUnavailableReason()

// The descriptors are checked by cuDNN itself as each one is finalized, which needs the library but no
// device: this part of the graphs is verified wherever cuDNN is installed.
TEST(CudnnAttention, EveryDescriptorOfBothGraphsFinalizes) {
  MOESCOPE_SKIP_WITHOUT_CUDNN();
  EXPECT_EQ(cudnnAttentionCheckDescriptors(2, 128, 2, 64), "");
  EXPECT_EQ(cudnnAttentionCheckDescriptors(16, 1024, 16, 128), "");  // the benchmark model
  EXPECT_EQ(cudnnAttentionCheckDescriptors(1, 2048, 8, 64), "");
}

TEST(CudnnAttention, SupportsSequencesOf128sAndHeadSizesOf8sUpTo128) {
  EXPECT_TRUE(cudnnAttentionSupports(1024, 128));
  EXPECT_TRUE(cudnnAttentionSupports(128, 64));
  EXPECT_TRUE(cudnnAttentionSupports(2048, 8));
  EXPECT_FALSE(cudnnAttentionSupports(1000, 128));
  EXPECT_FALSE(cudnnAttentionSupports(64, 64));
  EXPECT_FALSE(cudnnAttentionSupports(1024, 256));
  EXPECT_FALSE(cudnnAttentionSupports(1024, 60));
}

// Which forward pass produces out and lse for cuDNN's backward pass: its own, or the fused kernels'
// (the two keep the same log-sum-exp, so the engine may mix them).
enum class Forward { Cudnn, Fused };

void checkCudnnAttention(CudnnAttention& attention, int B, int Tl, int NH, int D, uint32_t seed,
                         Forward forward = Forward::Cudnn) {
  SCOPED_TRACE(testing::Message() << "B=" << B << " T=" << Tl << " NH=" << NH << " D=" << D
                                  << (forward == Forward::Fused ? " after the fused forward" : ""));
  const size_t qkvSize = size_t(B) * Tl * 3 * NH * D, outSize = size_t(B) * Tl * NH * D;
  const auto qkv = roundTo<Bf16>(randomFloats(qkvSize, seed, -1.5f, 1.5f));
  const auto dout = roundTo<Bf16>(randomFloats(outSize, seed + 1));
  DeviceBuffer<Bf16> dQkv(qkvSize), dOut(outSize), dDout(outSize), dDqkv(qkvSize);
  DeviceBuffer<float> dLse(size_t(B) * NH * Tl);
  const size_t workBytes =
      std::max(attention.workspaceBytes(B, Tl, NH, D), flashAttentionWorkspaceBytes(B, Tl, NH, D));
  DeviceBuffer<unsigned char> dWork(workBytes);
  uploadAs(dQkv, qkv);
  uploadAs(dDout, dout);
  dOut.poison();
  dLse.poison();
  dDqkv.poison();  // overwritten, not accumulated: every element must be written
  dWork.poison();
  if (forward == Forward::Cudnn) {
    attention.forward(dOut.get(), dLse.get(), dQkv.get(), dWork.get(), B, Tl, NH, D, nullptr);
  } else {
    flashAttentionForward(dOut.get(), dLse.get(), dQkv.get(), B, Tl, NH, D, nullptr);
  }
  attention.backward(dDqkv.get(), dDout.get(), dQkv.get(), dOut.get(), dLse.get(), dWork.get(), B, Tl, NH, D,
                     nullptr);

  const std::vector<double> qd(qkv.begin(), qkv.end()), doutd(dout.begin(), dout.end());
  std::vector<double> out(outSize), att(size_t(B) * NH * Tl * Tl), dqkv(qkvSize, 0.0);
  cpu::attentionForward(out.data(), att.data(), qd.data(), B, Tl, NH, D);
  cpu::attentionBackward(dqkv.data(), doutd.data(), qd.data(), att.data(), B, Tl, NH, D);
  // lse from the reference probabilities: lse_i = s_ii − log p_ii, s_ii = q_i·k_i / sqrt(D).
  std::vector<double> lse(size_t(B) * NH * Tl);
  const int Cl = NH * D;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < Tl; ++i) {
        double dot = 0;
        for (int d = 0; d < D; ++d)
          dot += qd[(size_t(b) * Tl + i) * 3 * Cl + h * D + d] *
                 qd[(size_t(b) * Tl + i) * 3 * Cl + Cl + h * D + d];
        const double pii = att[((size_t(b) * NH + h) * Tl + i) * Tl + i];
        lse[(size_t(b) * NH + h) * Tl + i] = dot / std::sqrt(double(D)) - std::log(pii);
      }
  const auto gotOut = downloadAsFloat(dOut), gotDqkv = downloadAsFloat(dDqkv);
  expectClose(gotOut, out, {2e-2, 1e-2}, "out");
  expectClose(dLse.download(), lse, {1e-3, 1e-4}, "lse");
  expectClose(gotDqkv, dqkv, {3e-2, 3e-2}, "dqkv");
  // bf16 operands: METHOD.md's 1e-3..1e-2 band for the whole array.
  EXPECT_LT(relativeError(gotOut, out), 1e-2);
  EXPECT_LT(relativeError(gotDqkv, dqkv), 2e-2);
}

TEST(CudnnAttention, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  MOESCOPE_SKIP_WITHOUT_CUDNN();
  CudnnAttention attention;
  std::printf("%s\n", attention.describe(2, 128, 2, 64).c_str());
  checkCudnnAttention(attention, 2, 128, 2, 64, 211);
  checkCudnnAttention(attention, 1, 256, 3, 128, 213);
  checkCudnnAttention(attention, 1, 1024, 1, 128, 215);  // the benchmark model's sequence
  checkCudnnAttention(attention, 2, 128, 2, 64, 217);    // a cached plan, fresh inputs
}

TEST(CudnnAttention, BackwardFollowsTheFusedKernelsForward) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  MOESCOPE_SKIP_WITHOUT_CUDNN();
  if (!flashAttentionAvailable()) GTEST_SKIP() << "the fused kernels cannot run on this device";
  CudnnAttention attention;
  checkCudnnAttention(attention, 2, 256, 2, 128, 219, Forward::Fused);
}

TEST(CudnnAttention, RejectsUnsupportedShapes) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  MOESCOPE_SKIP_WITHOUT_CUDNN();
  CudnnAttention attention;
  DeviceBuffer<Bf16> qkv(3 * 100 * 64), out(100 * 64);
  DeviceBuffer<float> lse(100);
  EXPECT_THROW(attention.forward(out.get(), lse.get(), qkv.get(), nullptr, 1, 100, 1, 64, nullptr),
               CudaError);
  EXPECT_THROW(attention.workspaceBytes(1, 128, 1, 256), CudaError);
}

}  // namespace
}  // namespace moescope::engine::cuda::test
