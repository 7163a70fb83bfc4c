#include <gtest/gtest.h>

#include "engine/cpu/ops.h"
#include "tests/engine/cpu/gradcheck.h"

namespace moescope::engine::cpu {
namespace {

using test::dot;
using test::expectGradient;
using test::randomIds;
using test::randomVector;

TEST(Embedding, ForwardAddsTokenAndPositionRows) {
  const int B = 2, T = 3, C = 4, V = 5;
  const auto wte = randomVector(V * C, 1);
  const auto wpe = randomVector(T * C, 2);
  const std::vector<int32_t> tokens = {4, 0, 4, 2, 2, 1};
  std::vector<double> out(B * T * C, -7);
  embeddingForward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c)
        EXPECT_EQ(out[(b * T + t) * C + c], wte[tokens[b * T + t] * C + c] + wpe[t * C + c]);
}

TEST(Embedding, BackwardMatchesFiniteDifferencesAndAccumulates) {
  const int B = 2, T = 3, C = 4, V = 5;
  auto wte = randomVector(V * C, 3);
  auto wpe = randomVector(T * C, 4);
  const auto tokens = randomIds(B * T, V, 5);
  const auto r = randomVector(B * T * C, 6);
  std::vector<double> out(B * T * C);
  auto loss = [&] {
    embeddingForward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    return dot(out, r);
  };
  std::vector<double> dwte(V * C, 0.0), dwpe(T * C, 0.0);
  embeddingBackward(dwte.data(), dwpe.data(), r.data(), tokens.data(), B, T, C);
  expectGradient("dwte", wte, dwte, loss);
  expectGradient("dwpe", wpe, dwpe, loss);

  std::vector<double> dwpe2(T * C, 1.0);
  embeddingBackward<double>(nullptr, dwpe2.data(), r.data(), tokens.data(), B, T, C);
  for (size_t i = 0; i < dwpe.size(); ++i) EXPECT_NEAR(dwpe2[i], dwpe[i] + 1.0, 1e-12);
}

}  // namespace
}  // namespace moescope::engine::cpu
