#include <gtest/gtest.h>

#include "engine/cpu/ops.h"
#include "tests/engine/cpu/gradcheck.h"

namespace moescope::engine::cpu {
namespace {

using test::dot;
using test::expectGradient;
using test::randomVector;

TEST(LayerNorm, ForwardHandWorked) {
  // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25
  const std::vector<double> x = {1, 2, 3, 4};
  const std::vector<double> w = {1, 2, 1, 1};
  const std::vector<double> b = {0, 0, 1, 0};
  std::vector<double> out(4), mean(1), rstd(1);
  layerNormForward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), 1, 4);
  const double s = 1.0 / std::sqrt(1.25 + 1e-5);
  EXPECT_DOUBLE_EQ(mean[0], 2.5);
  EXPECT_NEAR(rstd[0], s, 1e-15);
  EXPECT_NEAR(out[0], -1.5 * s, 1e-14);
  EXPECT_NEAR(out[1], 2 * -0.5 * s, 1e-14);
  EXPECT_NEAR(out[2], 0.5 * s + 1, 1e-14);
  EXPECT_NEAR(out[3], 1.5 * s, 1e-14);
}

TEST(LayerNorm, ForwardNormalisesEveryRow) {
  const int n = 3, C = 16;
  const auto x = randomVector(n * C, 51, -3, 5);
  const std::vector<float> xf(x.begin(), x.end());
  const std::vector<float> w(C, 1.0f), b(C, 0.0f);
  std::vector<float> out(n * C), mean(n), rstd(n);
  layerNormForward(out.data(), mean.data(), rstd.data(), xf.data(), w.data(), b.data(), n, C);
  for (int r = 0; r < n; ++r) {
    double m = 0, v = 0;
    for (int c = 0; c < C; ++c) m += out[r * C + c];
    m /= C;
    for (int c = 0; c < C; ++c) v += (out[r * C + c] - m) * (out[r * C + c] - m);
    v /= C;
    EXPECT_NEAR(m, 0.0, 1e-6);
    EXPECT_NEAR(v, 1.0, 1e-3);  // var / (var + eps)
  }
}

TEST(LayerNorm, BackwardMatchesFiniteDifferences) {
  const int n = 4, C = 7;
  auto x = randomVector(n * C, 61, -2, 2);
  auto w = randomVector(C, 62);
  auto b = randomVector(C, 63);
  const auto r = randomVector(n * C, 64);
  std::vector<double> out(n * C), mean(n), rstd(n);
  auto loss = [&] {
    layerNormForward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), n, C);
    return dot(out, r);
  };
  loss();
  std::vector<double> dx(n * C, 0.0), dw(C, 0.0), db(C, 0.0);
  layerNormBackward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(),
                    n, C);
  expectGradient("dx", x, dx, loss);
  expectGradient("dweight", w, dw, loss);
  expectGradient("dbias", b, db, loss);
}

}  // namespace
}  // namespace moescope::engine::cpu
