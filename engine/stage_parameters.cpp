#include "engine/stage_parameters.h"

#include <stdexcept>
#include <string>

namespace moescope::engine {

namespace {

bool endsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<StageParam> stageParameters(const Config& c, const Layout& layout, const RankCoord& rc) {
  const auto& m = c.model;
  const int tp = static_cast<int>(c.parallel.tp);
  std::vector<StageParam> out;
  auto add = [&](const ParamSpec& spec, Shard shard, ParamRole role, int layer, int expert, bool tp_unique,
                 bool dp_unique) {
    StageParam p;
    p.spec = spec;
    p.shard = shard;
    p.role = role;
    p.layer = layer;
    p.expert = expert;
    p.tp_unique = tp_unique || tp == 1;
    p.dp_unique = dp_unique;
    out.push_back(std::move(p));
  };
  if (rc.stage == 0) {
    for (const auto& spec : embeddingParameters(m)) {
      add(spec, {}, spec.name == "wte" ? ParamRole::Wte : ParamRole::Wpe, -1, -1, false, false);
    }
  }
  const int first_expert = layout.firstExpert(rc);
  const int n_local = layout.expertsPerRank();
  const Shard rows{Shard::Split::Rows, rc.tp, tp};
  const Shard cols{Shard::Split::Cols, rc.tp, tp};
  const Shard qkv{Shard::Split::QkvRows, rc.tp, tp};
  std::vector<int> layers;
  for (const LayerRange& chunk : layout.chunks(rc.stage))
    for (int li = chunk.begin; li < chunk.end; ++li) layers.push_back(li);
  for (int li : layers) {
    const std::string prefix = "h." + std::to_string(li) + ".";
    for (const auto& spec : layerParameters(m, li)) {
      const std::string key = spec.name.substr(prefix.size());
      if (key.rfind("moe.experts.", 0) == 0) {
        const int e = std::stoi(key.substr(12));
        if (e < first_expert || e >= first_expert + n_local) continue;
        const ParamRole role = endsWith(key, "c_fc.weight")     ? ParamRole::ExpertFcW
                               : endsWith(key, "c_fc.bias")     ? ParamRole::ExpertFcB
                               : endsWith(key, "c_proj.weight") ? ParamRole::ExpertProjW
                                                                : ParamRole::ExpertProjB;
        add(spec, {}, role, li, e, true, c.dpmoe());
      } else if (key == "ln_1.weight")
        add(spec, {}, ParamRole::Ln1W, li, -1, false, false);
      else if (key == "ln_1.bias")
        add(spec, {}, ParamRole::Ln1B, li, -1, false, false);
      else if (key == "attn.c_attn.weight")
        add(spec, qkv, ParamRole::AttnW, li, -1, true, false);
      else if (key == "attn.c_attn.bias")
        add(spec, qkv, ParamRole::AttnB, li, -1, true, false);
      else if (key == "attn.c_proj.weight")
        add(spec, cols, ParamRole::AttnProjW, li, -1, true, false);
      else if (key == "attn.c_proj.bias")
        add(spec, {}, ParamRole::AttnProjB, li, -1, false, false);
      else if (key == "ln_2.weight")
        add(spec, {}, ParamRole::Ln2W, li, -1, false, false);
      else if (key == "ln_2.bias")
        add(spec, {}, ParamRole::Ln2B, li, -1, false, false);
      else if (key == "mlp.c_fc.weight")
        add(spec, rows, ParamRole::FcW, li, -1, true, false);
      else if (key == "mlp.c_fc.bias")
        add(spec, rows, ParamRole::FcB, li, -1, true, false);
      else if (key == "mlp.c_proj.weight")
        add(spec, cols, ParamRole::FcProjW, li, -1, true, false);
      else if (key == "mlp.c_proj.bias")
        add(spec, {}, ParamRole::FcProjB, li, -1, false, false);
      else if (key == "moe.router.weight")
        add(spec, {}, ParamRole::Router, li, -1, false, false);
      else
        throw std::logic_error("stageParameters: unexpected parameter " + spec.name);
    }
  }
  if (rc.stage == layout.pp() - 1) {
    for (const auto& spec : headParameters(m)) {
      const ParamRole role = spec.name == "ln_f.weight" ? ParamRole::LnfW
                             : spec.name == "ln_f.bias" ? ParamRole::LnfB
                                                        : ParamRole::LmHead;
      add(spec, {}, role, -1, -1, false, false);
    }
  }
  return out;
}

}  // namespace moescope::engine
