#include <gtest/gtest.h>

#include "engine/cpu/ops.h"
#include "tests/engine/cpu/gradcheck.h"

namespace moescope::engine::cpu {
namespace {

using test::dot;
using test::expectGradient;
using test::randomVector;

TEST(MoeSlicing, ExpertRowsListsKeptAssignmentsInTokenOrder) {
  // tokens' picks (K = 2) and keep mask
  const std::vector<int32_t> choice = {0, 1, 2, 0, 0, 1, 1, 2};
  const std::vector<uint8_t> keep = {1, 1, 1, 0, 1, 1, 1, 1};
  std::vector<int32_t> rows(4, -1);
  EXPECT_EQ(expertRows(rows.data(), choice.data(), keep.data(), 4, 2, 0), 2);
  EXPECT_EQ(rows[0], 0);
  EXPECT_EQ(rows[1], 2);  // token 1's pick of expert 0 was dropped
  EXPECT_EQ(expertRows(rows.data(), choice.data(), keep.data(), 4, 2, 1), 3);
  EXPECT_EQ(rows, (std::vector<int32_t>{0, 2, 3, -1}));
  EXPECT_EQ(expertRows(rows.data(), choice.data(), nullptr, 4, 2, 0), 3);
  EXPECT_EQ((std::vector<int32_t>(rows.begin(), rows.begin() + 3)), (std::vector<int32_t>{0, 1, 2}));
}

TEST(MoeSlicing, GatherAndWeightedScatterRebuildTheMixture) {
  // y = Σ_e Σ_{kept tokens of e} p[t,e] · f_e(x[t]) with f_e(x) = (e + 1) · x, against a direct loop.
  const int n = 6, C = 3, E = 3, K = 2;
  const auto x = randomVector(n * C, 101);
  const auto p = randomVector(n * E, 102, 0, 1);
  std::vector<int32_t> choice(n * K);
  routerTopK(choice.data(), p.data(), n, E, K);
  std::vector<uint8_t> keep(n * K);
  routerCapacity(keep.data(), nullptr, choice.data(), n, E, K, 3);
  std::vector<double> y(n * C, 0.0), ref(n * C, 0.0);
  std::vector<int32_t> rows(n);
  std::vector<double> buf(n * C);
  for (int e = 0; e < E; ++e) {
    const int m = expertRows(rows.data(), choice.data(), keep.data(), n, K, e);
    gatherRows(buf.data(), x.data(), rows.data(), m, C);
    for (int i = 0; i < m * C; ++i) buf[i] *= e + 1;
    scatterAddWeighted(y.data(), buf.data(), p.data(), rows.data(), m, C, E, e);
  }
  for (int t = 0; t < n; ++t)
    for (int k = 0; k < K; ++k)
      if (keep[t * K + k]) {
        const int e = choice[t * K + k];
        for (int c = 0; c < C; ++c) ref[t * C + c] += p[t * E + e] * (e + 1) * x[t * C + c];
      }
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], ref[i], 1e-14);
}

TEST(MoeSlicing, GatherBackwardMatchesFiniteDifferences) {
  const int n = 5, C = 3, m = 3;
  auto x = randomVector(n * C, 103);
  const std::vector<int32_t> rows = {4, 0, 2};
  const auto r = randomVector(m * C, 104);
  std::vector<double> out(m * C);
  auto loss = [&] {
    gatherRows(out.data(), x.data(), rows.data(), m, C);
    return dot(out, r);
  };
  std::vector<double> dx(n * C, 0.0);
  gatherRowsBackward(dx.data(), r.data(), rows.data(), m, C);
  expectGradient("dx", x, dx, loss);
}

TEST(MoeSlicing, ScatterAddWeightedBackwardMatchesFiniteDifferences) {
  const int n = 5, C = 4, m = 3, E = 3, expert = 1;
  auto src = randomVector(m * C, 105);
  auto p = randomVector(n * E, 106, 0, 1);
  const std::vector<int32_t> rows = {1, 3, 4};
  const auto base = randomVector(n * C, 107);
  const auto r = randomVector(n * C, 108);
  std::vector<double> y(n * C);
  auto loss = [&] {
    y = base;
    scatterAddWeighted(y.data(), src.data(), p.data(), rows.data(), m, C, E, expert);
    return dot(y, r);
  };
  std::vector<double> dsrc(m * C, 0.0), dp(n * E, 0.0);
  scatterAddWeightedBackward(dsrc.data(), dp.data(), r.data(), src.data(), p.data(), rows.data(), m, C, E,
                             expert);
  expectGradient("dsrc", src, dsrc, loss);
  expectGradient("dp", p, dp, loss);
}

}  // namespace
}  // namespace moescope::engine::cpu
