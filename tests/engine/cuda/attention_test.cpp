#include "engine/cuda/attention.h"

#include <type_traits>

#include "engine/cpu/ops.h"
#include "engine/cuda/flash_attention.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaAttention : public ::testing::Test {};
TYPED_TEST_SUITE(CudaAttention, StorageTypes, StorageTypeNames);

// log Σ_{j<=i} exp(q_i·k_j / sqrt(D)) per (b, h, i), as attentionForward saves it
std::vector<double> referenceLse(const std::vector<double>& qkv, int B, int Tl, int NH, int D) {
  const int Cl = NH * D;
  std::vector<double> lse(size_t(B) * NH * Tl);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < Tl; ++i) {
        std::vector<double> s(i + 1);
        double m = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          double dot = 0;
          for (int d = 0; d < D; ++d) {
            dot += qkv[(size_t(b) * Tl + i) * 3 * Cl + h * D + d] *
                   qkv[(size_t(b) * Tl + j) * 3 * Cl + Cl + h * D + d];
          }
          s[j] = dot / std::sqrt(double(D));
          m = std::max(m, s[j]);
        }
        double z = 0;
        for (double v : s) z += std::exp(v - m);
        lse[(size_t(b) * NH + h) * Tl + i] = m + std::log(z);
      }
  return lse;
}

// Which kernels run: the warp-per-row ones (attention.h, both storage types) or the fused tensor-core
// ones (flash_attention.h, bf16 only).
enum class Kernels { WarpPerRow, Fused };

template <typename T>
void checkAttention(int B, int Tl, int NH, int D, Kernels kernels = Kernels::WarpPerRow) {
  const bool fused = kernels == Kernels::Fused;
  SCOPED_TRACE(testing::Message() << (fused ? "fused " : "") << "B=" << B << " T=" << Tl << " NH=" << NH
                                  << " D=" << D);
  const size_t qkvSize = size_t(B) * Tl * 3 * NH * D, outSize = size_t(B) * Tl * NH * D;
  const auto qkv = roundTo<T>(randomFloats(qkvSize, 111, -1.5f, 1.5f));
  const auto dout = roundTo<T>(randomFloats(outSize, 112));
  const auto dqkv0 = roundTo<T>(randomFloats(qkvSize, 113, -0.1f, 0.1f));
  DeviceBuffer<T> dQkv(qkvSize), dOut(outSize), dDout(outSize), dDqkv(qkvSize);
  DeviceBuffer<float> dLse(size_t(B) * NH * Tl);
  DeviceBuffer<unsigned char> dWork(fused ? flashAttentionWorkspaceBytes(B, Tl, NH, D)
                                          : size_t(B) * NH * Tl * sizeof(float));
  uploadAs(dQkv, qkv);
  uploadAs(dDout, dout);
  uploadAs(dDqkv, dqkv0);
  dOut.poison();
  dLse.poison();
  dWork.poison();
  if constexpr (std::is_same_v<T, Bf16>) {
    if (fused) {
      flashAttentionForward(dOut.get(), dLse.get(), dQkv.get(), B, Tl, NH, D, nullptr);
      flashAttentionBackward(dDqkv.get(), dDout.get(), dQkv.get(), dOut.get(), dLse.get(), dWork.get(), B, Tl,
                             NH, D, nullptr);
    }
  }
  if (!fused) {
    float* work = reinterpret_cast<float*>(dWork.get());
    attentionForward(dOut.get(), dLse.get(), dQkv.get(), B, Tl, NH, D, nullptr);
    attentionBackward(dDqkv.get(), dDout.get(), dQkv.get(), dOut.get(), dLse.get(), work, B, Tl, NH, D,
                      nullptr);
  }

  const std::vector<double> qd(qkv.begin(), qkv.end()), doutd(dout.begin(), dout.end());
  std::vector<double> out(outSize), att(size_t(B) * NH * Tl * Tl), dqkv(dqkv0.begin(), dqkv0.end());
  cpu::attentionForward(out.data(), att.data(), qd.data(), B, Tl, NH, D);
  cpu::attentionBackward(dqkv.data(), doutd.data(), qd.data(), att.data(), B, Tl, NH, D);
  expectClose(downloadAsFloat(dOut), out, toleranceFor<T>({1e-5, 1e-4}, {2e-2, 1e-2}), "out");
  expectClose(dLse.download(), referenceLse(qd, B, Tl, NH, D),
              fused ? Tolerance{1e-3, 1e-4} : Tolerance{1e-4, 1e-5}, "lse");
  expectClose(downloadAsFloat(dDqkv), dqkv, toleranceFor<T>({1e-4, 1e-3}, {3e-2, 3e-2}), "dqkv");
}

TYPED_TEST(CudaAttention, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  checkAttention<TypeParam>(2, 70, 3, 32);  // T not a multiple of the 32-row tile nor of 8 rows a block
  checkAttention<TypeParam>(1, 33, 2, 48);  // D not a multiple of 32
  checkAttention<TypeParam>(1, 40, 1, 128);
  checkAttention<TypeParam>(1, 9, 1, 256);  // the largest head size: more than 48 KiB of shared memory
  checkAttention<TypeParam>(1, 1, 2, 16);   // one position
}

TEST(CudaFlashAttention, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  EXPECT_TRUE(flashAttentionSupports(64));
  EXPECT_TRUE(flashAttentionSupports(128));
  EXPECT_FALSE(flashAttentionSupports(48));
  EXPECT_TRUE(flashAttentionAvailable()) << "this build holds no sm_80+ code for the device";
  checkAttention<Bf16>(2, 70, 3, 64, Kernels::Fused);     // T not a multiple of the 64-row tile
  checkAttention<Bf16>(1, 200, 2, 128, Kernels::Fused);   // several tiles, the last one partial
  checkAttention<Bf16>(2, 128, 2, 128, Kernels::Fused);   // whole tiles only
  checkAttention<Bf16>(1, 1, 2, 64, Kernels::Fused);      // one position
  checkAttention<Bf16>(1, 1024, 1, 128, Kernels::Fused);  // the benchmark model's sequence: 16 tiles a row
}

TEST(CudaFlashAttention, RejectsUnsupportedHeadSizes) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  DeviceBuffer<Bf16> qkv(3 * 48), out(48);
  DeviceBuffer<float> lse(1);
  EXPECT_THROW(flashAttentionForward(out.get(), lse.get(), qkv.get(), 1, 1, 1, 48, nullptr), CudaError);
}

}  // namespace
}  // namespace moescope::engine::cuda::test
