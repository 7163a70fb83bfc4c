#include <gtest/gtest.h>

#include "engine/cpu/ops.h"
#include "tests/engine/cpu/gradcheck.h"

namespace moescope::engine::cpu {
namespace {

using test::expectGradient;
using test::randomIds;
using test::randomVector;

TEST(CrossEntropy, ForwardHandWorkedAndStable) {
  const std::vector<float> logits = {0, 0, 0, 1000, 0, 0};
  const std::vector<int32_t> targets = {2, 1};
  std::vector<float> losses(2);
  const double total = crossEntropyForward(losses.data(), logits.data(), targets.data(), 2, 3);
  EXPECT_NEAR(losses[0], std::log(3.0), 1e-6);
  EXPECT_NEAR(losses[1], 1000.0, 1e-3);
  EXPECT_NEAR(total, std::log(3.0) + 1000.0, 1e-3);
}

TEST(CrossEntropy, ForwardMatchesNaiveLogSoftmax) {
  const int n = 4, V = 9;
  const auto logits = randomVector(n * V, 91, -3, 3);
  const auto targets = randomIds(n, V, 92);
  std::vector<double> losses(n);
  crossEntropyForward(losses.data(), logits.data(), targets.data(), n, V);
  for (int r = 0; r < n; ++r) {
    double z = 0;
    for (int v = 0; v < V; ++v) z += std::exp(logits[r * V + v]);
    EXPECT_NEAR(losses[r], -std::log(std::exp(logits[r * V + targets[r]]) / z), 1e-13);
  }
}

TEST(CrossEntropy, BackwardOfTheMeanMatchesFiniteDifferences) {
  const int n = 5, V = 7;
  auto logits = randomVector(n * V, 93, -3, 3);
  const auto targets = randomIds(n, V, 94);
  auto loss = [&] { return crossEntropyForward<double>(nullptr, logits.data(), targets.data(), n, V) / n; };
  std::vector<double> dlogits(n * V, 0.0);
  crossEntropyBackward(dlogits.data(), logits.data(), targets.data(), 1.0 / n, n, V);
  expectGradient("dlogits", logits, dlogits, loss);
}

}  // namespace
}  // namespace moescope::engine::cpu
