#include <gtest/gtest.h>

#include "engine/cpu/ops.h"
#include "tests/engine/cpu/gradcheck.h"

namespace moescope::engine::cpu {
namespace {

using test::dot;
using test::expectGradient;
using test::randomVector;

TEST(Router, SoftmaxForwardRowsSumToOne) {
  const int n = 3, E = 5;
  const auto logits = randomVector(n * E, 81, -5, 5);
  std::vector<double> p(n * E);
  softmaxForward(p.data(), logits.data(), n, E);
  for (int r = 0; r < n; ++r) {
    double z = 0;
    for (int e = 0; e < E; ++e) z += std::exp(logits[r * E + e]);
    for (int e = 0; e < E; ++e) EXPECT_NEAR(p[r * E + e], std::exp(logits[r * E + e]) / z, 1e-15);
  }
}

TEST(Router, SoftmaxBackwardMatchesFiniteDifferences) {
  const int n = 4, E = 6;
  auto logits = randomVector(n * E, 82, -2, 2);
  const auto r = randomVector(n * E, 83);
  std::vector<double> p(n * E);
  auto loss = [&] {
    softmaxForward(p.data(), logits.data(), n, E);
    return dot(p, r);
  };
  loss();
  std::vector<double> dlogits(n * E, 0.0);
  softmaxBackward(dlogits.data(), r.data(), p.data(), n, E);
  expectGradient("dlogits", logits, dlogits, loss);
}

TEST(Router, TopKOrdersByProbabilityAndBreaksTiesByLowerIndex) {
  const int E = 4, K = 3;
  const std::vector<float> p = {
      0.25f, 0.25f, 0.25f, 0.25f,  // all equal: 0, 1, 2
      0.1f,  0.4f,  0.1f,  0.4f,   // 1 before 3, then 0 before 2
      0.05f, 0.15f, 0.7f,  0.1f,   // 2, 1, 3
  };
  std::vector<int32_t> choice(3 * K, -1);
  routerTopK(choice.data(), p.data(), 3, E, K);
  EXPECT_EQ(choice, (std::vector<int32_t>{0, 1, 2, 1, 3, 0, 2, 1, 3}));
}

TEST(Router, ExpertCapacityIsCeilOfFactorTimesAssignmentsPerExpert) {
  EXPECT_EQ(expertCapacity(1.25, 16384, 2, 16), 2560);
  EXPECT_EQ(expertCapacity(1.0, 10, 2, 4), 5);
  EXPECT_EQ(expertCapacity(1.1, 10, 1, 4), 3);  // ceil(2.75)
  EXPECT_EQ(expertCapacity(0.5, 3, 1, 4), 1);   // ceil(0.375)
  EXPECT_EQ(expertCapacity(0.0, 10, 2, 4), -1);
  EXPECT_EQ(expertCapacity(-1.0, 10, 2, 4), -1);
}

TEST(Router, CapacityTakesAllFirstChoicesBeforeAnySecondChoice) {
  // 5 tokens, 3 experts, top-2, capacity 2.
  // First choices in token order: t0→0 keep, t1→0 keep, t2→0 drop, t3→1 keep, t4→2 keep.
  // Second choices in token order: t0→1 keep, t1→2 keep, t2→1 drop, t3→0 drop, t4→0 drop.
  // (Token-major order would instead keep t2's second choice and drop t3's first.)
  const std::vector<int32_t> choice = {0, 1, 0, 2, 0, 1, 1, 0, 2, 0};
  std::vector<uint8_t> keep(10, 9);
  std::vector<int32_t> load(3, -1);
  const int dropped = routerCapacity(keep.data(), load.data(), choice.data(), 5, 3, 2, 2);
  EXPECT_EQ(keep, (std::vector<uint8_t>{1, 1, 1, 1, 0, 0, 1, 0, 1, 0}));
  EXPECT_EQ(dropped, 4);
  EXPECT_EQ(load, (std::vector<int32_t>{2, 2, 2}));

  std::vector<uint8_t> all(10, 9);
  EXPECT_EQ(routerCapacity(all.data(), nullptr, choice.data(), 5, 3, 2, -1), 0);
  EXPECT_EQ(all, std::vector<uint8_t>(10, 1));
}

TEST(Router, AuxLossHandWorked) {
  // 4 tokens, 2 experts, top-1. First choices 0, 0, 0, 1: f = [0.75, 0.25].
  const std::vector<double> p = {0.9, 0.1, 0.6, 0.4, 0.7, 0.3, 0.2, 0.8};  // P = [0.6, 0.4]
  const std::vector<int32_t> choice = {0, 0, 0, 1};
  std::vector<double> f(2);
  const double aux = auxLossForward(f.data(), p.data(), choice.data(), 4, 2, 1);
  EXPECT_DOUBLE_EQ(f[0], 0.75);
  EXPECT_DOUBLE_EQ(f[1], 0.25);
  EXPECT_NEAR(aux, 2 * (0.75 * 0.6 + 0.25 * 0.4), 1e-15);
}

TEST(Router, AuxLossBackwardMatchesFiniteDifferencesWithFixedChoices) {
  const int n = 6, E = 4, K = 2;
  auto p = randomVector(n * E, 84, 0, 1);
  std::vector<int32_t> choice(n * K);
  routerTopK(choice.data(), p.data(), n, E, K);
  std::vector<double> f(E);
  const double daux = 0.37;
  auto loss = [&] { return daux * auxLossForward(f.data(), p.data(), choice.data(), n, E, K); };
  loss();
  std::vector<double> dp(n * E, 0.0);
  auxLossBackward(dp.data(), f.data(), daux, n, E);
  expectGradient("dp", p, dp, loss);
}

}  // namespace
}  // namespace moescope::engine::cpu
