#include "engine/parameters.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/random.h"

namespace moescope::engine {
namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

// A uniform double in (0, 1) from counter i of stream key.
double uniform(uint64_t key, uint64_t i) {
  uint64_t bits = splitmix64(key ^ splitmix64(i));
  return (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

ParamSpec weight(std::string name, std::vector<int64_t> shape, double stddev) {
  return {std::move(name), std::move(shape), InitKind::Normal, stddev, true};
}
ParamSpec zeros(std::string name, std::vector<int64_t> shape) {
  return {std::move(name), std::move(shape), InitKind::Zeros, 0, false};
}
ParamSpec ones(std::string name, std::vector<int64_t> shape) {
  return {std::move(name), std::move(shape), InitKind::Ones, 0, false};
}

}  // namespace

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<ParamSpec> embeddingParameters(const ModelConfig& m) {
  return {weight("wte", {m.vocab_size, m.d_model}, 0.02), weight("wpe", {m.seq_len, m.d_model}, 0.02)};
}

std::vector<ParamSpec> layerParameters(const ModelConfig& m, int layer) {
  const int64_t C = m.d_model, F = m.d_ff;
  const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(m.n_layers));
  const std::string h = "h." + std::to_string(layer) + ".";
  std::vector<ParamSpec> specs = {
      ones(h + "ln_1.weight", {C}),
      zeros(h + "ln_1.bias", {C}),
      weight(h + "attn.c_attn.weight", {3 * C, C}, 0.02),
      zeros(h + "attn.c_attn.bias", {3 * C}),
      weight(h + "attn.c_proj.weight", {C, C}, proj_std),
      zeros(h + "attn.c_proj.bias", {C}),
      ones(h + "ln_2.weight", {C}),
      zeros(h + "ln_2.bias", {C}),
  };
  if (m.isMoeLayer(layer)) {
    specs.push_back(weight(h + "moe.router.weight", {m.n_experts, C}, 0.02));
    for (int64_t e = 0; e < m.n_experts; ++e) {
      const std::string x = h + "moe.experts." + std::to_string(e) + ".";
      specs.push_back(weight(x + "c_fc.weight", {F, C}, 0.02));
      specs.push_back(zeros(x + "c_fc.bias", {F}));
      specs.push_back(weight(x + "c_proj.weight", {C, F}, proj_std));
      specs.push_back(zeros(x + "c_proj.bias", {C}));
    }
  } else {
    specs.push_back(weight(h + "mlp.c_fc.weight", {F, C}, 0.02));
    specs.push_back(zeros(h + "mlp.c_fc.bias", {F}));
    specs.push_back(weight(h + "mlp.c_proj.weight", {C, F}, proj_std));
    specs.push_back(zeros(h + "mlp.c_proj.bias", {C}));
  }
  return specs;
}

std::vector<ParamSpec> headParameters(const ModelConfig& m) {
  return {ones("ln_f.weight", {m.d_model}), zeros("ln_f.bias", {m.d_model}),
          weight("lm_head.weight", {m.vocab_size, m.d_model}, 0.02)};
}

std::vector<ParamSpec> modelParameters(const ModelConfig& m) {
  std::vector<ParamSpec> specs = embeddingParameters(m);
  for (int layer = 0; layer < m.n_layers; ++layer) {
    auto l = layerParameters(m, layer);
    specs.insert(specs.end(), l.begin(), l.end());
  }
  auto head = headParameters(m);
  specs.insert(specs.end(), head.begin(), head.end());
  return specs;
}

std::vector<float> initialValues(const ParamSpec& spec, uint64_t seed) {
  std::vector<float> values(static_cast<size_t>(spec.numel()), 0.0f);
  if (spec.init == InitKind::Ones) {
    std::fill(values.begin(), values.end(), 1.0f);
  } else if (spec.init == InitKind::Normal) {
    const uint64_t key = splitmix64(seed) ^ fnv1a(spec.name);
    for (size_t i = 0; i < values.size(); ++i) {
      // Box-Muller on the counters (2i, 2i + 1): value i depends on nothing but (seed, name, i).
      double u1 = uniform(key, 2 * i), u2 = uniform(key, 2 * i + 1);
      double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
      values[i] = static_cast<float>(spec.stddev * z);
    }
  }
  return values;
}

std::vector<int64_t> shardShape(const std::vector<int64_t>& full, const Shard& s) {
  std::vector<int64_t> shape = full;
  switch (s.split) {
    case Shard::Split::Full:
      break;
    case Shard::Split::Rows:
    case Shard::Split::QkvRows:
      shape[0] /= s.parts;
      break;
    case Shard::Split::Cols:
      shape[1] /= s.parts;
      break;
  }
  return shape;
}

namespace {

// Calls f(full_index, local_index) for every element of the shard.
template <class F>
void forEachShardElement(const std::vector<int64_t>& shape, const Shard& s, F f) {
  const int64_t rows = shape[0];
  const int64_t cols = shape.size() > 1 ? shape[1] : 1;
  switch (s.split) {
    case Shard::Split::Full:
      for (int64_t i = 0; i < rows * cols; ++i) f(i, i);
      break;
    case Shard::Split::Rows: {
      const int64_t local_rows = rows / s.parts, r0 = s.part * local_rows;
      for (int64_t r = 0; r < local_rows; ++r)
        for (int64_t c = 0; c < cols; ++c) f((r0 + r) * cols + c, r * cols + c);
      break;
    }
    case Shard::Split::QkvRows: {
      const int64_t block = rows / 3, local_block = block / s.parts;
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t r = 0; r < local_block; ++r)
          for (int64_t c = 0; c < cols; ++c)
            f((b * block + s.part * local_block + r) * cols + c, (b * local_block + r) * cols + c);
      break;
    }
    case Shard::Split::Cols: {
      const int64_t local_cols = cols / s.parts, c0 = s.part * local_cols;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < local_cols; ++c) f(r * cols + c0 + c, r * local_cols + c);
      break;
    }
  }
}

}  // namespace

std::vector<float> sliceShard(const std::vector<float>& full, const std::vector<int64_t>& shape,
                              const Shard& s) {
  int64_t n = 1;
  for (int64_t d : shardShape(shape, s)) n *= d;
  std::vector<float> local(static_cast<size_t>(n));
  forEachShardElement(shape, s, [&](int64_t fi, int64_t li) { local[li] = full[fi]; });
  return local;
}

void placeShard(std::vector<float>& full, const std::vector<int64_t>& shape, const Shard& s,
                const std::vector<float>& local) {
  forEachShardElement(shape, s, [&](int64_t fi, int64_t li) { full[fi] = local[li]; });
}

}  // namespace moescope::engine
