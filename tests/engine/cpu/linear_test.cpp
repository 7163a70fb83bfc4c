#include <gtest/gtest.h>

#include "engine/cpu/ops.h"
#include "tests/engine/cpu/gradcheck.h"

namespace moescope::engine::cpu {
namespace {

using test::dot;
using test::expectGradient;
using test::randomVector;

std::vector<double> naiveLinear(const std::vector<double>& x, const std::vector<double>& w, const double* b,
                                int n, int in, int out) {
  std::vector<double> y(static_cast<size_t>(n) * out);
  for (int r = 0; r < n; ++r)
    for (int o = 0; o < out; ++o) {
      double s = b ? b[o] : 0.0;
      for (int i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

struct Shape {
  int n, in, out;
};

TEST(Linear, ForwardMatchesNaiveLoopsOnEveryTileRemainder) {
  for (const Shape s :
       {Shape{1, 1, 1}, Shape{4, 8, 2}, Shape{7, 13, 5}, Shape{9, 33, 3}, Shape{16, 64, 12}}) {
    const auto x = randomVector(s.n * s.in, 21);
    const auto w = randomVector(s.out * s.in, 22);
    const auto b = randomVector(s.out, 23);
    for (const bool withBias : {false, true}) {
      const double* bp = withBias ? b.data() : nullptr;
      const auto ref = naiveLinear(x, w, bp, s.n, s.in, s.out);
      std::vector<double> y(ref.size(), std::nan(""));
      linearForward(y.data(), x.data(), w.data(), bp, s.n, s.in, s.out);
      for (size_t i = 0; i < y.size(); ++i)
        EXPECT_NEAR(y[i], ref[i], 1e-12) << s.n << "x" << s.in << "x" << s.out;

      // float: same result up to float rounding
      std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end()), bf(b.begin(), b.end());
      std::vector<float> yf(ref.size(), std::nanf(""));
      linearForward(yf.data(), xf.data(), wf.data(), withBias ? bf.data() : nullptr, s.n, s.in, s.out);
      for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(yf[i], ref[i], 1e-5 * (1 + std::abs(ref[i])));
    }
  }
}

TEST(Linear, BackwardMatchesFiniteDifferences) {
  const int n = 5, in = 11, out = 3;
  auto x = randomVector(n * in, 31);
  auto w = randomVector(out * in, 32);
  auto b = randomVector(out, 33);
  const auto r = randomVector(n * out, 34);
  std::vector<double> y(n * out);
  auto loss = [&] {
    linearForward(y.data(), x.data(), w.data(), b.data(), n, in, out);
    return dot(y, r);
  };
  std::vector<double> dx(n * in, 0.0), dw(out * in, 0.0), db(out, 0.0);
  linearBackward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), n, in, out);
  expectGradient("dx", x, dx, loss);
  expectGradient("dw", w, dw, loss);
  expectGradient("db", b, db, loss);
}

TEST(Linear, BackwardAccumulatesAndSkipsNullGradients) {
  const int n = 3, in = 4, out = 2;
  const auto x = randomVector(n * in, 41);
  const auto w = randomVector(out * in, 42);
  const auto dy = randomVector(n * out, 43);
  std::vector<double> dx(n * in, 0.0), dw(out * in, 0.0), db(out, 0.0);
  linearBackward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), n, in, out);

  std::vector<double> dx2(n * in, 0.5), dw2(out * in, -1.0);
  linearBackward<double>(dx2.data(), nullptr, nullptr, dy.data(), x.data(), w.data(), n, in, out);
  linearBackward<double>(nullptr, dw2.data(), nullptr, dy.data(), x.data(), nullptr, n, in, out);
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx2[i], dx[i] + 0.5, 1e-12);
  for (size_t i = 0; i < dw.size(); ++i) EXPECT_NEAR(dw2[i], dw[i] - 1.0, 1e-12);
}

}  // namespace
}  // namespace moescope::engine::cpu
