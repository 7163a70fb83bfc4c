#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {
namespace {

TEST(AdamW, FirstStepMovesByLearningRateTimesSignAfterDecay) {
  // step 1: m̂ = g, v̂ = g², so the Adam part moves by lr · g / (|g| + eps).
  std::vector<double> p = {1.0, -2.0}, g = {0.5, -0.25}, m = {0, 0}, v = {0, 0};
  AdamWParams hp;
  hp.lr = 0.1;
  hp.weightDecay = 0.1;
  adamwStep(p.data(), g.data(), m.data(), v.data(), 2, hp, 1, 1.0);
  EXPECT_NEAR(p[0], 1.0 * 0.99 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-12);
  EXPECT_NEAR(p[1], -2.0 * 0.99 + 0.1 * 0.25 / (0.25 + 1e-8), 1e-12);
  EXPECT_NEAR(m[0], 0.05, 1e-15);
  EXPECT_NEAR(v[0], 0.05 * 0.25, 1e-15);
}

TEST(AdamW, ThreeStepsMatchTheClosedForm) {
  AdamWParams hp;
  hp.lr = 1e-2;
  hp.beta1 = 0.9;
  hp.beta2 = 0.95;
  hp.eps = 1e-8;
  hp.weightDecay = 0.1;
  const double grads[3] = {0.3, -0.1, 0.2};
  const double scale = 0.5;
  float p = 0.7f, m = 0, v = 0;
  double rp = 0.7, rm = 0, rv = 0;
  for (int step = 1; step <= 3; ++step) {
    const float g = static_cast<float>(grads[step - 1]);
    adamwStep(&p, &g, &m, &v, 1, hp, step, scale);
    const double gs = grads[step - 1] * scale;
    rp *= 1 - hp.lr * hp.weightDecay;
    rm = hp.beta1 * rm + (1 - hp.beta1) * gs;
    rv = hp.beta2 * rv + (1 - hp.beta2) * gs * gs;
    const double mhat = rm / (1 - std::pow(hp.beta1, step));
    const double vhat = rv / (1 - std::pow(hp.beta2, step));
    rp -= hp.lr * mhat / (std::sqrt(vhat) + hp.eps);
    EXPECT_NEAR(p, rp, 1e-6) << "step " << step;
  }
}

TEST(AdamW, NoWeightDecayAndZeroGradientLeavesParameter) {
  double p = 3.0, g = 0.0, m = 0, v = 0;
  AdamWParams hp;
  hp.weightDecay = 0.0;
  adamwStep(&p, &g, &m, &v, 1, hp, 1, 1.0);
  EXPECT_EQ(p, 3.0);
}

TEST(GradClip, SumOfSquaresAndClipCoefficient) {
  const std::vector<float> x = {3, 4};
  EXPECT_DOUBLE_EQ(sumOfSquares(x.data(), x.size()), 25.0);
  EXPECT_NEAR(clipCoefficient(5.0, 1.0), 1.0 / (5.0 + 1e-6), 1e-15);
  EXPECT_EQ(clipCoefficient(0.5, 1.0), 1.0);
  EXPECT_EQ(clipCoefficient(100.0, 0.0), 1.0);   // off
  EXPECT_EQ(clipCoefficient(100.0, -1.0), 1.0);  // off
}

}  // namespace
}  // namespace moescope::engine::cpu
