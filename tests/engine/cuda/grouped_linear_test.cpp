#include "engine/cuda/grouped_linear.h"

#include <cstdio>

#include "engine/cpu/ops.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

template <typename T>
class CudaGroupedLinear : public ::testing::Test {};
TYPED_TEST_SUITE(CudaGroupedLinear, StorageTypes, StorageTypeNames);

// Groups of rows with their own weights and biases (slices of one flat buffer each, as the stage keeps its
// experts), forward (with and without the GELU) and backward, against the CPU reference group by group.
template <typename T>
void checkGroupedLinear(GroupedLinear& gl, const std::vector<int>& rowBegin, int in, int out, uint32_t seed) {
  SCOPED_TRACE(testing::Message() << rowBegin.size() - 1 << " groups, " << rowBegin.back()
                                  << " rows, in=" << in << " out=" << out);
  const size_t G = rowBegin.size() - 1, rows = size_t(rowBegin.back());
  const size_t wn = size_t(out) * in;
  const auto x = roundTo<T>(randomFloats(rows * in, seed));
  const auto w = roundTo<T>(randomFloats(G * wn, seed + 1, -0.2f, 0.2f));
  const auto b = roundTo<T>(randomFloats(G * out, seed + 2));
  const auto dy = roundTo<T>(randomFloats(rows * out, seed + 3));
  const auto dx0 = roundTo<T>(randomFloats(rows * in, seed + 4));
  const auto dw0 = randomFloats(G * wn, seed + 5);
  const auto db0 = randomFloats(G * out, seed + 6);
  DeviceBuffer<T> dX(x.size()), dW(w.size()), dB(b.size()), dY(rows * out), dPre(rows * out),
      dAct(rows * out), dDy(dy.size()), dDx(dx0.size());
  DeviceBuffer<float> dDw(dw0.size()), dDb(db0.size());
  uploadAs(dX, x);
  uploadAs(dW, w);
  uploadAs(dB, b);
  uploadAs(dDy, dy);
  uploadAs(dDx, dx0);
  dDw.upload(dw0);
  dDb.upload(db0);
  dY.poison();
  dPre.poison();
  dAct.poison();
  std::vector<const T*> wp, bp;
  std::vector<float*> dwp, dbp;
  for (size_t g = 0; g < G; ++g) {
    wp.push_back(dW.get() + g * wn);
    bp.push_back(dB.get() + g * out);
    dwp.push_back(dDw.get() + g * wn);
    dbp.push_back(dDb.get() + g * out);
  }
  gl.forward(dY.get(), dX.get(), wp, bp, rowBegin, in, out, nullptr);
  gl.forward(dAct.get(), dX.get(), wp, bp, rowBegin, in, out, nullptr, dPre.get());
  gl.backward(dDx.get(), dwp, dbp, dDy.get(), dX.get(), wp, rowBegin, in, out, nullptr);

  const std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), bd(b.begin(), b.end()),
      dyd(dy.begin(), dy.end());
  std::vector<double> y(rows * out), act(rows * out), dx(dx0.begin(), dx0.end()), dw(dw0.begin(), dw0.end()),
      db(db0.begin(), db0.end());
  for (size_t g = 0; g < G; ++g) {
    const int m = rowBegin[g + 1] - rowBegin[g];
    const size_t r = size_t(rowBegin[g]);
    cpu::linearForward(y.data() + r * out, xd.data() + r * in, wd.data() + g * wn, bd.data() + g * out, m, in,
                       out);
    cpu::linearBackward(dx.data() + r * in, dw.data() + g * wn, db.data() + g * out, dyd.data() + r * out,
                        xd.data() + r * in, wd.data() + g * wn, m, in, out);
  }
  // The GELU reads the pre-activation as stored (rounded to T).
  const auto pre = downloadAsFloat(dPre);
  const std::vector<double> pred(pre.begin(), pre.end());
  cpu::geluForward(act.data(), pred.data(), act.size());
  const Tolerance fwd = toleranceFor<T>({1e-4, 1e-4}, {3e-2, 1e-2});
  expectClose(downloadAsFloat(dY), y, fwd, "y");
  expectClose(pre, y, fwd, "pre");
  expectClose(downloadAsFloat(dAct), act, toleranceFor<T>({1e-5, 1e-5}, {1e-2, 1e-2}), "gelu(pre)");
  expectClose(downloadAsFloat(dDx), dx, toleranceFor<T>({1e-4, 1e-4}, {2e-2, 1e-2}), "dx");
  expectClose(dDw.download(), dw, {1e-3, 1e-4}, "dw");
  expectClose(dDb.download(), db, {1e-3, 1e-4}, "db");
}

TYPED_TEST(CudaGroupedLinear, MatchesTheCpuReferenceGroupByGroup) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  CublasLt lt;
  GroupedLinear gl(lt);
  checkGroupedLinear<TypeParam>(gl, {0, 5, 5, 37, 100, 101}, 64, 96, 601);  // an empty group, a single row
  checkGroupedLinear<TypeParam>(gl, {0, 700, 1300}, 256, 512, 611);         // rows in several bias parts
  std::vector<int> many(GroupedLinear::kMaxGroups + 4, 0);
  for (size_t g = 1; g < many.size(); ++g) many[g] = many[g - 1] + int(g % 3);
  checkGroupedLinear<TypeParam>(gl, many, 16, 24, 621);  // more groups than a call holds
  std::printf("%s: %lld products grouped, %lld group by group\n", precisionName<TypeParam>(),
              static_cast<long long>(gl.groupedProducts()), static_cast<long long>(gl.loopedProducts()));
  EXPECT_GT(gl.groupedProducts(), 0) << "cuBLAS ran no product as a grouped GEMM";
}

TEST(CudaGroupedLinear, NoRowsIsNoWork) {
  MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();
  CublasLt lt;
  GroupedLinear gl(lt);
  DeviceBuffer<float> w(16);
  gl.forward<float>(nullptr, nullptr, {w.get(), w.get()}, {}, {0, 0, 0}, 4, 4, nullptr);
  EXPECT_EQ(gl.groupedProducts() + gl.loopedProducts(), 0);
  EXPECT_THROW(gl.forward<float>(nullptr, nullptr, {w.get(), w.get()}, {}, {0, 3, 2}, 4, 4, nullptr),
               CudaError);
}

}  // namespace
}  // namespace moescope::engine::cuda::test
