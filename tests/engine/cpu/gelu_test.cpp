#include <gtest/gtest.h>

#include "engine/cpu/ops.h"
#include "tests/engine/cpu/gradcheck.h"

namespace moescope::engine::cpu {
namespace {

using test::dot;
using test::expectGradient;
using test::randomVector;

TEST(Gelu, ForwardMatchesTheTanhApproximation) {
  // torch.nn.functional.gelu(torch.tensor([0., 1., -1., 3.], dtype=torch.float64), approximate="tanh")
  const std::vector<double> x = {0.0, 1.0, -1.0, 3.0};
  std::vector<double> y(x.size());
  geluForward(y.data(), x.data(), x.size());
  EXPECT_EQ(y[0], 0.0);
  EXPECT_NEAR(y[1], 0.8411919906082768, 1e-14);
  EXPECT_NEAR(y[2], -0.15880800939172324, 1e-14);
  EXPECT_NEAR(y[3], 2.996362607918227, 1e-14);

  std::vector<float> xf = {1.0f, -1.0f};
  geluForward(xf.data(), xf.data(), xf.size());  // in place
  EXPECT_NEAR(xf[0], 0.8411920f, 1e-6);
  EXPECT_NEAR(xf[1], -0.1588080f, 1e-6);
}

TEST(Gelu, BackwardMatchesFiniteDifferences) {
  const size_t n = 50;
  auto x = randomVector(n, 11, -4.0, 4.0);
  const auto r = randomVector(n, 12);
  std::vector<double> y(n);
  auto loss = [&] {
    geluForward(y.data(), x.data(), n);
    return dot(y, r);
  };
  std::vector<double> dx(n, 0.0);
  geluBackward(dx.data(), x.data(), r.data(), n);
  expectGradient("dx", x, dx, loss);
}

}  // namespace
}  // namespace moescope::engine::cpu
