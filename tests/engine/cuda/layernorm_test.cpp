#include "engine/cuda/layernorm.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaLayerNorm : public ::testing::Test {};
TYPED_TEST_SUITE(CudaLayerNorm, StorageTypes, StorageTypeNames);

template <typename T>
void checkLayerNorm(int n, int C) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " C=" << C);
  const auto x = roundTo<T>(randomFloats(size_t(n) * C, 41, -3, 5));
  const auto w = roundTo<T>(randomFloats(C, 42, 0.5f, 1.5f));
  const auto b = roundTo<T>(randomFloats(C, 43));
  const auto dout = roundTo<T>(randomFloats(size_t(n) * C, 44));
  const auto dx0 = roundTo<T>(randomFloats(size_t(n) * C, 45));
  const auto dw0 = randomFloats(C, 46);
  const auto db0 = randomFloats(C, 47);
  DeviceBuffer<T> dX(x.size()), dW(C), dB(C), dOut(x.size()), dDout(x.size()), dDx(x.size());
  DeviceBuffer<float> dMean(n), dRstd(n), dDw(C), dDb(C);
  uploadAs(dX, x);
  uploadAs(dW, w);
  uploadAs(dB, b);
  uploadAs(dDout, dout);
  uploadAs(dDx, dx0);
  dDw.upload(dw0);
  dDb.upload(db0);
  dOut.poison();
  dMean.poison();
  dRstd.poison();
  layerNormForward(dOut.get(), dMean.get(), dRstd.get(), dX.get(), dW.get(), dB.get(), n, C, nullptr);
  layerNormBackward(dDx.get(), dDw.get(), dDb.get(), dDout.get(), dX.get(), dW.get(), dMean.get(),
                    dRstd.get(), n, C, nullptr);

  const std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), bd(b.begin(), b.end()),
      doutd(dout.begin(), dout.end());
  std::vector<double> out(x.size()), mean(n), rstd(n), dx(dx0.begin(), dx0.end()), dw(dw0.begin(), dw0.end()),
      db(db0.begin(), db0.end());
  cpu::layerNormForward(out.data(), mean.data(), rstd.data(), xd.data(), wd.data(), bd.data(), n, C);
  cpu::layerNormBackward(dx.data(), dw.data(), db.data(), doutd.data(), xd.data(), wd.data(), mean.data(),
                         rstd.data(), n, C);
  expectClose(downloadAsFloat(dOut), out, toleranceFor<T>({1e-5, 1e-5}, {2e-2, 1e-2}), "out");
  expectClose(dMean.download(), mean, {1e-5, 1e-5}, "mean");
  expectClose(dRstd.download(), rstd, {1e-5, 1e-4}, "rstd");
  expectClose(downloadAsFloat(dDx), dx, toleranceFor<T>({1e-4, 1e-4}, {3e-2, 1e-2}), "dx");
  expectClose(dDw.download(), dw, {1e-3, 1e-4}, "dweight");  // sums over n rows, fp32 in both modes
  expectClose(dDb.download(), db, {1e-3, 1e-4}, "dbias");
}

TYPED_TEST(CudaLayerNorm, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  checkLayerNorm<TypeParam>(37, 300);   // C not a multiple of 8: element by element
  checkLayerNorm<TypeParam>(33, 40);    // vectors of 8, fewer than a warp has lanes
  checkLayerNorm<TypeParam>(5, 2048);   // the benchmark model's width
  checkLayerNorm<TypeParam>(4099, 64);  // parameter gradients over several parts of the rows
  checkLayerNorm<TypeParam>(600, 264);  // a strip of 256 columns and one of 8
}

}  // namespace
}  // namespace moescope::engine::cuda::test
