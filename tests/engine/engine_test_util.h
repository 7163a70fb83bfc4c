// Shared helpers of the engine tests: a tiny model, deterministic tokens, running a layout and
// comparing its result with a single rank's.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/data.h"
#include "engine/trainer.h"

namespace moescope::engine::testing {

// A model small enough that a 2-step run of any layout takes milliseconds.
inline Config tinyConfig() {
  Config c;
  c.model.vocab_size = 64;
  c.model.seq_len = 8;
  c.model.d_model = 16;
  c.model.n_heads = 4;
  c.model.n_layers = 4;
  c.model.d_ff = 32;
  c.model.n_experts = 4;
  c.model.top_k = 2;
  c.model.capacity_factor = 0.0;
  c.model.moe_every = 2;
  c.model.aux_loss_coef = 0.01;
  c.train.global_batch = 8;
  c.train.steps = 2;
  c.train.lr = 1e-2;
  c.train.seed = 7;
  c.trace.enabled = false;
  return c;
}

inline TokenData tinyTokens(const Config& c, int count = 4096) {
  std::vector<uint32_t> tokens(static_cast<size_t>(count));
  uint64_t x = 12345;
  for (auto& t : tokens) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<uint32_t>((x >> 33) % static_cast<uint64_t>(c.model.vocab_size));
  }
  return TokenData::fromTokens(std::move(tokens), c.model.seq_len);
}

inline TrainResult runLayout(const Config& c, const TokenData& data) {
  validate(c);
  TrainOptions options;
  options.config = c;
  options.data = &data;
  options.gather_weights = true;
  return train(options);
}

// The same model and routing groups on one rank: pp = tp = dp = 1, dp x microbatches micro-batches.
inline Config singleRankOf(Config c) {
  c.parallel.microbatches *= c.parallel.dp;
  c.parallel.pp = c.parallel.tp = c.parallel.dp = 1;
  return c;
}

inline double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

// Checks MODEL.md's equivalence: the step-0 loss to 1e-6 (relative) and every tensor's update after the
// run to 1e-3 (||Δ_layout − Δ_single|| / ||Δ_single||), the attention key bias left out.
inline void expectEquivalent(const Config& layout_config) {
  const TokenData data = tinyTokens(layout_config);
  const Config single_config = singleRankOf(layout_config);
  const TrainResult single = runLayout(single_config, data);
  const TrainResult layout = runLayout(layout_config, data);
  ASSERT_EQ(single.steps.size(), layout.steps.size());
  const double l0 = single.steps[0].losses.loss, l1 = layout.steps[0].losses.loss;
  EXPECT_LE(std::abs(l0 - l1), 1e-6 * std::abs(l0)) << "step-0 loss " << l1 << " vs single rank " << l0;
  const ModelWeights init =
      initialWeights(layout_config.model, static_cast<uint64_t>(layout_config.train.seed));
  ASSERT_EQ(init.size(), single.weights.size());
  ASSERT_EQ(init.size(), layout.weights.size());
  const int64_t C = layout_config.model.d_model;
  for (size_t i = 0; i < init.size(); ++i) {
    const auto& name = init[i].name;
    std::vector<float> ds(init[i].data.size()), dl(init[i].data.size()), diff(init[i].data.size());
    size_t skip_lo = 0, skip_hi = 0;  // the key bias: elements [C, 2C) of attn.c_attn.bias
    if (name.size() > 16 && name.compare(name.size() - 16, 16, "attn.c_attn.bias") == 0) {
      skip_lo = static_cast<size_t>(C);
      skip_hi = static_cast<size_t>(2 * C);
    }
    for (size_t j = 0; j < ds.size(); ++j) {
      if (j >= skip_lo && j < skip_hi) continue;
      ds[j] = single.weights[i].data[j] - init[i].data[j];
      dl[j] = layout.weights[i].data[j] - init[i].data[j];
      diff[j] = dl[j] - ds[j];
    }
    const double n = norm(ds);
    EXPECT_GT(n, 0.0) << name << " was not updated";
    EXPECT_LE(norm(diff), 1e-3 * n) << name << ": update differs, relative " << norm(diff) / n;
  }
}

}  // namespace moescope::engine::testing
