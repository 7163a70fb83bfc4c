#include <gtest/gtest.h>

#include "engine/cpu/ops.h"
#include "tests/engine/cpu/gradcheck.h"

namespace moescope::engine::cpu {
namespace {

using test::dot;
using test::expectGradient;
using test::randomVector;

// out[b,i,h·D+d] by the textbook formula: masked scores, softmax, weighted sum of v.
std::vector<double> naiveAttention(const std::vector<double>& qkv, int B, int T, int NH, int D) {
  const int Cl = NH * D;
  std::vector<double> out(static_cast<size_t>(B) * T * Cl, 0.0);
  auto at = [&](int b, int t, int block, int h, int d) {
    return qkv[(b * T + t) * 3 * Cl + block * Cl + h * D + d];
  };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < T; ++i) {
        std::vector<double> s(T, -INFINITY);
        double maxv = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          double q = 0;
          for (int d = 0; d < D; ++d) q += at(b, i, 0, h, d) * at(b, j, 1, h, d);
          s[j] = q / std::sqrt(double(D));
          maxv = std::max(maxv, s[j]);
        }
        double z = 0;
        for (int j = 0; j < T; ++j) z += std::exp(s[j] - maxv);
        for (int j = 0; j < T; ++j)
          for (int d = 0; d < D; ++d)
            out[(b * T + i) * Cl + h * D + d] += std::exp(s[j] - maxv) / z * at(b, j, 2, h, d);
      }
  return out;
}

TEST(Attention, ForwardMatchesNaiveMaskedSoftmax) {
  const int B = 2, T = 6, NH = 3, D = 4;
  const auto qkv = randomVector(B * T * 3 * NH * D, 71, -2, 2);
  std::vector<double> out(B * T * NH * D, std::nan("")), att(B * NH * T * T, std::nan(""));
  attentionForward(out.data(), att.data(), qkv.data(), B, T, NH, D);
  const auto ref = naiveAttention(qkv, B, T, NH, D);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 1e-12);
  for (int row = 0; row < B * NH * T; ++row) {
    const int i = row % T;
    double sum = 0;
    for (int j = 0; j < T; ++j) {
      const double a = att[row * T + j];
      if (j > i) {
        EXPECT_EQ(a, 0.0);
      }
      sum += a;
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
}

TEST(Attention, FirstPositionCopiesItsValue) {
  const int B = 1, T = 3, NH = 2, D = 2;
  const auto qkv = randomVector(B * T * 3 * NH * D, 72);
  std::vector<float> qkvf(qkv.begin(), qkv.end());
  std::vector<float> out(B * T * NH * D), att(B * NH * T * T);
  attentionForward(out.data(), att.data(), qkvf.data(), B, T, NH, D);
  for (int c = 0; c < NH * D; ++c) EXPECT_FLOAT_EQ(out[c], qkvf[2 * NH * D + c]);
}

TEST(Attention, BackwardMatchesFiniteDifferences) {
  const int B = 2, T = 5, NH = 2, D = 3;
  auto qkv = randomVector(B * T * 3 * NH * D, 73, -1.5, 1.5);
  const auto r = randomVector(B * T * NH * D, 74);
  std::vector<double> out(B * T * NH * D), att(B * NH * T * T);
  auto loss = [&] {
    attentionForward(out.data(), att.data(), qkv.data(), B, T, NH, D);
    return dot(out, r);
  };
  loss();
  std::vector<double> dqkv(qkv.size(), 0.0);
  attentionBackward(dqkv.data(), r.data(), qkv.data(), att.data(), B, T, NH, D);
  expectGradient("dqkv", qkv, dqkv, loss);
}

}  // namespace
}  // namespace moescope::engine::cpu
