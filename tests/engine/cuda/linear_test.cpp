#include "engine/cuda/linear.h"

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaLinear : public ::testing::Test {};
TYPED_TEST_SUITE(CudaLinear, StorageTypes, StorageTypeNames);

template <typename T>
void checkLinear(CublasLt& lt, int n, int in, int out, bool withBias) {
  SCOPED_TRACE(testing::Message() << "n=" << n << " in=" << in << " out=" << out << " bias=" << withBias);
  const auto x = roundTo<T>(randomFloats(size_t(n) * in, 91));
  const auto w = roundTo<T>(randomFloats(size_t(out) * in, 92, -0.2f, 0.2f));
  const auto b = roundTo<T>(randomFloats(out, 93));
  const auto dy = roundTo<T>(randomFloats(size_t(n) * out, 94));
  const auto dx0 = roundTo<T>(randomFloats(size_t(n) * in, 95));
  const auto dw0 = randomFloats(size_t(out) * in, 96);
  const auto db0 = randomFloats(out, 97);
  DeviceBuffer<T> dX(x.size()), dW(w.size()), dB(b.size()), dY(size_t(n) * out), dDy(dy.size()),
      dDx(dx0.size());
  DeviceBuffer<float> dDw(dw0.size()), dDb(db0.size());
  uploadAs(dX, x);
  uploadAs(dW, w);
  uploadAs(dB, b);
  uploadAs(dDy, dy);
  uploadAs(dDx, dx0);
  dDw.upload(dw0);
  dDb.upload(db0);
  dY.poison();
  linearForward(lt, dY.get(), dX.get(), dW.get(), withBias ? dB.get() : nullptr, n, in, out, nullptr);
  linearBackward(lt, dDx.get(), dDw.get(), withBias ? dDb.get() : nullptr, dDy.get(), dX.get(), dW.get(), n,
                 in, out, nullptr);

  const std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), bd(b.begin(), b.end()),
      dyd(dy.begin(), dy.end());
  std::vector<double> y(size_t(n) * out), dx(dx0.begin(), dx0.end()), dw(dw0.begin(), dw0.end()),
      db(db0.begin(), db0.end());
  cpu::linearForward(y.data(), xd.data(), wd.data(), withBias ? bd.data() : nullptr, n, in, out);
  cpu::linearBackward(dx.data(), dw.data(), withBias ? db.data() : nullptr, dyd.data(), xd.data(), wd.data(),
                      n, in, out);
  expectClose(downloadAsFloat(dY), y, toleranceFor<T>({1e-4, 1e-4}, {2e-2, 1e-2}), "y");
  expectClose(downloadAsFloat(dDx), dx, toleranceFor<T>({1e-4, 1e-4}, {2e-2, 1e-2}), "dx");
  expectClose(dDw.download(), dw, {1e-3, 1e-4}, "dw");  // fp32 output, sums over n rows
  expectClose(dDb.download(), db, {1e-3, 1e-4}, "db");
}

TYPED_TEST(CudaLinear, ForwardAndBackwardMatchTheCpuReference) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  CublasLt lt;
  checkLinear<TypeParam>(lt, 64, 128, 96, true);
  checkLinear<TypeParam>(lt, 37, 24, 40, true);  // an odd row count
  checkLinear<TypeParam>(lt, 37, 24, 40, false);
  checkLinear<TypeParam>(lt, 300, 256, 1024, true);
}

TEST(CudaLinear, OptionalGradientsAreSkipped) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  CublasLt lt;
  const int n = 16, in = 32, out = 8;
  const auto x = randomFloats(size_t(n) * in, 98);
  const auto dy = randomFloats(size_t(n) * out, 99);
  const auto dw0 = randomFloats(size_t(out) * in, 100);
  DeviceBuffer<float> dX(x.size()), dDy(dy.size()), dDw(dw0.size());
  dX.upload(x);
  dDy.upload(dy);
  dDw.upload(dw0);
  // only dW: no W and no dx needed
  linearBackward<float>(lt, nullptr, dDw.get(), nullptr, dDy.get(), dX.get(), nullptr, n, in, out, nullptr);
  std::vector<float> dw = dw0;
  cpu::linearBackward<float>(nullptr, dw.data(), nullptr, dy.data(), x.data(), nullptr, n, in, out);
  expectClose(dDw.download(), dw, {1e-4, 1e-4}, "dw");
}

}  // namespace
}  // namespace moescope::engine::cuda::test
