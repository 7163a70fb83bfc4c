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

// The bias gradient on its own (the path without BGRADB): 16-byte accesses where out is a multiple of 8 and
// dy aligned (strips of 256 columns, the last one partial), the scalar kernel otherwise; added to db.
TYPED_TEST(CudaLinear, BiasGradientAddsTheColumnSums) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  struct Shape {
    int n, out, offset;
  };
  for (const Shape& sh : {Shape{1, 8, 0}, Shape{37, 96, 0}, Shape{5000, 1024, 0}, Shape{300, 8200, 0},
                          Shape{37, 40, 0}, Shape{37, 41, 0}, Shape{300, 1024, 1}}) {
    SCOPED_TRACE(testing::Message() << "n=" << sh.n << " out=" << sh.out << " offset=" << sh.offset);
    const auto dy = roundTo<TypeParam>(randomFloats(size_t(sh.n) * sh.out + sh.offset, 101));
    const auto db0 = randomFloats(sh.out, 102);
    DeviceBuffer<TypeParam> dDy(dy.size());
    DeviceBuffer<float> dDb(db0.size());
    uploadAs(dDy, dy);
    dDb.upload(db0);
    biasGradient(dDb.get(), dDy.get() + sh.offset, sh.n, sh.out, nullptr);
    std::vector<double> db(db0.begin(), db0.end());
    for (int r = 0; r < sh.n; ++r)
      for (int o = 0; o < sh.out; ++o) db[o] += dy[sh.offset + size_t(r) * sh.out + o];
    expectClose(dDb.download(), db, {1e-4, 1e-4}, "db");
  }
}

// overwriteDx: dx = dy W whatever dx held (NaN here: the product must not read it).
TYPED_TEST(CudaLinear, OverwrittenInputGradientReadsNothingOfDx) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  CublasLt lt;
  const int n = 64, in = 128, out = 96;
  const auto w = roundTo<TypeParam>(randomFloats(size_t(out) * in, 103, -0.2f, 0.2f));
  const auto dy = roundTo<TypeParam>(randomFloats(size_t(n) * out, 104));
  DeviceBuffer<TypeParam> dW(w.size()), dDy(dy.size()), dDx(size_t(n) * in);
  uploadAs(dW, w);
  uploadAs(dDy, dy);
  dDx.poison();
  linearBackward<TypeParam>(lt, dDx.get(), nullptr, nullptr, dDy.get(), nullptr, dW.get(), n, in, out,
                            nullptr,
                            /*overwriteDx=*/true);
  const std::vector<double> wd(w.begin(), w.end()), dyd(dy.begin(), dy.end());
  std::vector<double> dx(size_t(n) * in, 0.0);
  cpu::linearBackward<double>(dx.data(), nullptr, nullptr, dyd.data(), nullptr, wd.data(), n, in, out);
  expectClose(downloadAsFloat(dDx), dx, toleranceFor<TypeParam>({1e-4, 1e-4}, {2e-2, 1e-2}), "dx");
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
