#include "engine/parameters.h"

#include <gtest/gtest.h>

#include <cmath>

namespace moescope::engine {
namespace {

TEST(Parameters, NamesAndShapesFollowModelMd) {
  ModelConfig m;
  m.n_layers = 2;
  m.moe_every = 2;
  m.n_experts = 2;
  const auto specs = modelParameters(m);
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s.name);
  const std::vector<std::string> expected = {"wte",
                                             "wpe",
                                             "h.0.ln_1.weight",
                                             "h.0.ln_1.bias",
                                             "h.0.attn.c_attn.weight",
                                             "h.0.attn.c_attn.bias",
                                             "h.0.attn.c_proj.weight",
                                             "h.0.attn.c_proj.bias",
                                             "h.0.ln_2.weight",
                                             "h.0.ln_2.bias",
                                             "h.0.mlp.c_fc.weight",
                                             "h.0.mlp.c_fc.bias",
                                             "h.0.mlp.c_proj.weight",
                                             "h.0.mlp.c_proj.bias",
                                             "h.1.ln_1.weight",
                                             "h.1.ln_1.bias",
                                             "h.1.attn.c_attn.weight",
                                             "h.1.attn.c_attn.bias",
                                             "h.1.attn.c_proj.weight",
                                             "h.1.attn.c_proj.bias",
                                             "h.1.ln_2.weight",
                                             "h.1.ln_2.bias",
                                             "h.1.moe.router.weight",
                                             "h.1.moe.experts.0.c_fc.weight",
                                             "h.1.moe.experts.0.c_fc.bias",
                                             "h.1.moe.experts.0.c_proj.weight",
                                             "h.1.moe.experts.0.c_proj.bias",
                                             "h.1.moe.experts.1.c_fc.weight",
                                             "h.1.moe.experts.1.c_fc.bias",
                                             "h.1.moe.experts.1.c_proj.weight",
                                             "h.1.moe.experts.1.c_proj.bias",
                                             "ln_f.weight",
                                             "ln_f.bias",
                                             "lm_head.weight"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(specs[4].shape, (std::vector<int64_t>{3 * 128, 128}));
  EXPECT_EQ(specs[22].shape, (std::vector<int64_t>{2, 128}));
  EXPECT_EQ(specs[25].shape, (std::vector<int64_t>{128, 512}));
  for (const auto& s : specs) EXPECT_EQ(s.decay, s.shape.size() >= 2) << s.name;
}

TEST(Parameters, InitialisationIsDeterministicWithModelMdStatistics) {
  ModelConfig m;
  m.n_layers = 8;
  m.n_experts = 2;
  auto specs = modelParameters(m);
  specs.resize(2 + 2 * 16);  // embeddings and the first two layers
  for (const auto& s : specs) {
    const auto v = initialValues(s, 1234);
    EXPECT_EQ(v, initialValues(s, 1234)) << s.name;
    if (s.init == InitKind::Normal) {
      double sum = 0, sq = 0;
      for (float x : v) {
        sum += x;
        sq += static_cast<double>(x) * x;
      }
      const double n = static_cast<double>(v.size());
      const double stddev = std::sqrt(sq / n - (sum / n) * (sum / n));
      const bool proj = s.name.find("c_proj.weight") != std::string::npos;
      const double expected = proj ? 0.02 / std::sqrt(16.0) : 0.02;
      EXPECT_NEAR(stddev, expected, 0.1 * expected) << s.name;
      EXPECT_NE(v, initialValues(s, 1235)) << s.name;
    } else {
      for (float x : v) ASSERT_EQ(x, s.init == InitKind::Ones ? 1.0f : 0.0f) << s.name;
    }
  }
}

TEST(Parameters, ShardsSliceAndPlace) {
  const std::vector<int64_t> shape = {6, 4};  // a c_attn-like [3C, C] with C = 2... rows 0-1 q, 2-3 k, 4-5 v
  std::vector<float> full(24);
  for (size_t i = 0; i < full.size(); ++i) full[i] = static_cast<float>(i);
  const Shard qkv{Shard::Split::QkvRows, 1, 2};
  EXPECT_EQ(shardShape(shape, qkv), (std::vector<int64_t>{3, 4}));
  // Part 1 of 2 holds row 1 of q, row 3 of k, row 5 of v.
  EXPECT_EQ(sliceShard(full, shape, qkv), (std::vector<float>{4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23}));
  const Shard cols{Shard::Split::Cols, 1, 2};
  EXPECT_EQ(sliceShard(full, shape, cols), (std::vector<float>{2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23}));
  const Shard rows{Shard::Split::Rows, 1, 3};
  EXPECT_EQ(sliceShard(full, shape, rows), (std::vector<float>{8, 9, 10, 11, 12, 13, 14, 15}));
  for (Shard::Split split :
       {Shard::Split::Rows, Shard::Split::Cols, Shard::Split::QkvRows, Shard::Split::Full}) {
    std::vector<float> rebuilt(24, -1);
    const int parts = split == Shard::Split::Full ? 1 : 2;
    for (int p = 0; p < parts; ++p) {
      const Shard s{split, p, parts};
      placeShard(rebuilt, shape, s, sliceShard(full, shape, s));
    }
    EXPECT_EQ(rebuilt, full);
  }
}

}  // namespace
}  // namespace moescope::engine
