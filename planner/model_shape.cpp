#include "planner/model_shape.h"

#include <toml++/toml.h>

#include <sstream>

#include "planner/planner_error.h"

namespace moescope::planner {

namespace {

int64_t intKey(const toml::table& t, std::string_view section, std::string_view key, int64_t fallback,
               int64_t min) {
  const toml::node_view<const toml::node> node = t[section][key];
  if (!node) return fallback;
  const std::optional<int64_t> v = node.value<int64_t>();
  if (!v || *v < min)
    throw PlanError("the calibration run's config: " + std::string(section) + "." + std::string(key) +
                    " must be an integer >= " + std::to_string(min));
  return *v;
}

}  // namespace

ModelShape parseModelShape(std::string_view config_toml, std::string_view layout) {
  toml::table t;
  try {
    t = toml::parse(config_toml);
  } catch (const toml::parse_error& e) {
    std::ostringstream line;
    line << "the calibration run's config is not TOML: " << e.description() << " (line "
         << e.source().begin.line << ")";
    throw PlanError(line.str());
  }
  ModelShape m;
  m.vocab = intKey(t, "model", "vocab_size", m.vocab, 1);
  m.seq_len = intKey(t, "model", "seq_len", m.seq_len, 1);
  m.d_model = intKey(t, "model", "d_model", m.d_model, 1);
  m.heads = intKey(t, "model", "n_heads", m.heads, 1);
  m.layers = intKey(t, "model", "n_layers", m.layers, 1);
  m.d_ff = intKey(t, "model", "d_ff", m.d_ff, 1);
  m.experts = intKey(t, "model", "n_experts", m.experts, 0);
  m.top_k = intKey(t, "model", "top_k", m.top_k, 1);
  m.moe_every = intKey(t, "model", "moe_every", m.moe_every, 1);
  m.global_batch = intKey(t, "train", "global_batch", m.global_batch, 1);
  m.layout = m.experts == 0 ? "dense" : std::string(layout);
  return m;
}

RankParameters rankParameters(const ModelShape& m, int64_t begin, int64_t end, bool embeds, bool heads,
                              int tp, int dp) {
  const int64_t C = m.d_model, F = m.d_ff, E = m.experts;
  RankParameters p;
  int64_t unique = 0;  // held by one data-parallel replica only (dpmoe's experts)
  for (int64_t l = begin; l < end; ++l) {
    p.total += 4 * C;                                 // ln_1, ln_2
    p.total += (3 * C * C + 3 * C + C * C) / tp + C;  // c_attn, c_proj (bias replicated)
    const int64_t expert = F * C + F + C * F + C;
    if (!m.isMoe(l)) {
      p.total += (F * C + F + C * F) / tp + C;
    } else if (m.layout == "dpmoe") {
      p.total += E * C;
      unique += E / dp * expert;
    } else {
      p.total += E * C + E / tp * expert;
    }
  }
  if (embeds) p.total += (m.vocab + m.seq_len) * C;
  if (heads) p.total += 2 * C + m.vocab * C;
  p.replicated = p.total;
  p.total += unique;
  return p;
}

}  // namespace moescope::planner
