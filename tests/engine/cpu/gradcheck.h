// Test helpers for the CPU reference operations: seeded random arrays and a central finite-difference
// check of an analytic gradient, in double.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <functional>
#include <random>
#include <vector>

namespace moescope::engine::cpu::test {

inline std::vector<double> randomVector(size_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(gen);
  return v;
}

inline std::vector<int32_t> randomIds(size_t n, int32_t limit, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> dist(0, limit - 1);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = dist(gen);
  return v;
}

// Σ a ⊙ b: a scalar loss from an output and fixed random weights (whose gradient is the weights).
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// For every element of x: (loss(x + h) − loss(x − h)) / 2h against grad[i], within
// tol · max(1, |grad[i]|). loss() reads x as it is when called.
inline void expectGradient(const char* what, std::vector<double>& x, const std::vector<double>& grad,
                           const std::function<double()>& loss, double tol = 1e-6, double h = 1e-5) {
  ASSERT_EQ(x.size(), grad.size()) << what;
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(grad[i], numeric, tol * std::max(1.0, std::abs(numeric))) << what << "[" << i << "]";
  }
}

}  // namespace moescope::engine::cpu::test
