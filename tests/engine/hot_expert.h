// An unbalanced router for tests: weights under which every token's first choice at every MoE layer is
// one expert. LayerNorm 2's output has zero mean over the channels before its bias, so a router row
// of one constant a gives that expert the logit a x sum(bias) for every token: with the bias all ones
// and a = 20 / C, logit 20 against the others' ~0.1 (normal(0, 0.02) rows), a softmax share above
// 0.99. Only the weights change: the engine is the one every run uses (TrainOptions::init, or
// `train --init` with the weights saved as a checkpoint).
#pragma once

#include <string>

#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/trainer.h"

namespace moescope::engine::testing {

inline ModelWeights hotExpertWeights(const ModelConfig& model, uint64_t seed, int hot) {
  ModelWeights w = initialWeights(model, seed);
  auto tensor = [&w](const std::string& name) -> NamedTensor& {
    for (NamedTensor& t : w)
      if (t.name == name) return t;
    throw std::logic_error("no tensor " + name);
  };
  const auto C = static_cast<size_t>(model.d_model);
  for (int i = 0; i < model.n_layers; ++i) {
    if (!(model.n_experts > 0 && i % model.moe_every == model.moe_every - 1)) continue;
    const std::string layer = "h." + std::to_string(i);
    for (float& b : tensor(layer + ".ln_2.bias").data) b = 1.0f;
    NamedTensor& router = tensor(layer + ".moe.router.weight");
    for (size_t c = 0; c < C; ++c)
      router.data[static_cast<size_t>(hot) * C + c] = 20.0f / static_cast<float>(C);
  }
  return w;
}

}  // namespace moescope::engine::testing
