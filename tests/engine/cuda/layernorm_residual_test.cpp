#include "engine/cuda/layernorm_residual.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaResidualLayerNorm : public ::testing::Test {};
TYPED_TEST_SUITE(CudaResidualLayerNorm, StorageTypes, StorageTypeNames);

// inPlace: r is written over x, as the engine's residual stream is.
template <typename T>
void checkResidualLayerNorm(int n, int C, bool withBias, bool inPlace) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " C=" << C << " bias=" << withBias
                                  << " in place=" << inPlace);
  const auto x = roundTo<T>(randomFloats(size_t(n) * C, 61, -3, 5));
  const auto z = roundTo<T>(randomFloats(size_t(n) * C, 62, -2, 2));
  const auto b = roundTo<T>(randomFloats(C, 63));
  const auto w = roundTo<T>(randomFloats(C, 64, 0.5f, 1.5f));
  const auto lb = roundTo<T>(randomFloats(C, 65));
  DeviceBuffer<T> dX(x.size()), dZ(z.size()), dB(C), dW(C), dLb(C), dR(x.size()), dOut(x.size());
  DeviceBuffer<float> dMean(n), dRstd(n);
  uploadAs(dX, x);
  uploadAs(dZ, z);
  uploadAs(dB, b);
  uploadAs(dW, w);
  uploadAs(dLb, lb);
  dR.poison();
  dOut.poison();
  dMean.poison();
  dRstd.poison();
  T* r = inPlace ? dX.get() : dR.get();
  residualLayerNormForward(r, dOut.get(), dMean.get(), dRstd.get(), dX.get(), dZ.get(),
                           withBias ? dB.get() : nullptr, dW.get(), dLb.get(), n, C, nullptr);

  // r as residualAdd makes it: (x + z) + bias in float, rounded to T.
  std::vector<float> rf(x.size());
  for (size_t i = 0; i < rf.size(); ++i) rf[i] = (x[i] + z[i]) + (withBias ? b[i % C] : 0.0f);
  rf = roundTo<T>(rf);
  const std::vector<double> rd(rf.begin(), rf.end()), wd(w.begin(), w.end()), lbd(lb.begin(), lb.end());
  std::vector<double> out(x.size()), mean(n), rstd(n);
  cpu::layerNormForward(out.data(), mean.data(), rstd.data(), rd.data(), wd.data(), lbd.data(), n, C);
  const auto gotR = downloadAsFloat(inPlace ? dX : dR);
  for (size_t i = 0; i < rf.size(); ++i) ASSERT_EQ(gotR[i], rf[i]) << "r[" << i << "]";
  expectClose(downloadAsFloat(dOut), out, toleranceFor<T>({1e-5, 1e-5}, {2e-2, 1e-2}), "out");
  expectClose(dMean.download(), mean, {1e-5, 1e-5}, "mean");
  expectClose(dRstd.download(), rstd, {1e-5, 1e-4}, "rstd");
}

TYPED_TEST(CudaResidualLayerNorm, MatchesResidualAddThenTheCpuLayerNorm) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  checkResidualLayerNorm<TypeParam>(37, 300, true, false);   // C not a multiple of 8: element by element
  checkResidualLayerNorm<TypeParam>(33, 40, true, true);     // one vector a lane, some lanes idle
  checkResidualLayerNorm<TypeParam>(17, 2048, true, true);   // the benchmark model's width: 8 vectors a lane
  checkResidualLayerNorm<TypeParam>(9, 2560, false, false);  // the 2.7B preset's width, no bias
  checkResidualLayerNorm<TypeParam>(3, 4104, true, false);   // wider than the registers hold
}

TEST(CudaResidualLayerNorm, RejectsAnOutputOverItsInput) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  DeviceBuffer<float> x(64), z(64), w(64), b(64), out(64), mean(1), rstd(1);
  EXPECT_THROW(residualLayerNormForward<float>(out.get(), x.get(), mean.get(), rstd.get(), x.get(), z.get(),
                                               nullptr, w.get(), b.get(), 1, 64, nullptr),
               CudaError);
}

}  // namespace
}  // namespace moescope::engine::cuda::test
