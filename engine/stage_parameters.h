// Which parameters one rank holds under a layout, and the part it holds of each: the embeddings on the
// first stage, the layers of its stage (attention and dense FFN sharded Megatron-style over the tp
// group, the experts it owns under PPMoE or DPMoE), the head on the last stage. Shared by every
// backend's StageExecutor, so that the layouts place parameters alike whatever computes them.
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "engine/config.h"
#include "engine/layout.h"
#include "engine/parameters.h"

namespace moescope::engine {

// What a parameter is in the model, so an executor can wire it into its layer structures.
enum class ParamRole {
  Wte,
  Wpe,
  Ln1W,
  Ln1B,
  AttnW,
  AttnB,
  AttnProjW,
  AttnProjB,
  Ln2W,
  Ln2B,
  FcW,
  FcB,
  FcProjW,
  FcProjB,  // dense FFN
  Router,   // MoE
  ExpertFcW,
  ExpertFcB,
  ExpertProjW,
  ExpertProjB,
  LnfW,
  LnfB,
  LmHead,
};

struct StageParam {
  ParamSpec spec;
  Shard shard;
  ParamRole role = ParamRole::Wte;
  int layer = -1;          // h.{layer}.*
  int expert = -1;         // moe.experts.{expert}.*
  bool tp_unique = false;  // not replicated over the tp group (a shard, a PPMoE expert, or tp == 1)
  bool dp_unique = false;  // not replicated over the dp group (a DPMoE expert): no dp all-reduce
};

// This rank's parameters in checkpoint order (embeddings, layers in order, experts by index, head); a
// stage's chunks (interleaved) hold layers apart, still in order.
std::vector<StageParam> stageParameters(const Config& config, const Layout& layout, const RankCoord& coord);

// An executor's parameters wired by role into its own structures. Layer has the members index, moe,
// ln1_w, ln1_b, attn_w, attn_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, fcp_w, fcp_b, router and
// experts (a vector of Expert); Expert has index, fc_w, fc_b, proj_w, proj_b; the parameters are Ptr.
template <class Layer, class Expert, class Ptr>
struct StageWiring {
  std::map<int, Layer> layers;
  std::map<std::pair<int, int>, Expert> experts;  // (layer, expert)
  Ptr wte = nullptr, wpe = nullptr, lnf_w = nullptr, lnf_b = nullptr, lm_head = nullptr;

  StageWiring(const ModelConfig& model, const Layout& layout, int stage) {
    for (const LayerRange& chunk : layout.chunks(stage)) {
      for (int li = chunk.begin; li < chunk.end; ++li) {
        layers[li].index = li;
        layers[li].moe = model.isMoeLayer(li);
      }
    }
  }

  void add(const StageParam& sp, Ptr p) {
    Layer* L = sp.layer >= 0 ? &layers[sp.layer] : nullptr;
    Expert* x = sp.expert >= 0 ? &experts[{sp.layer, sp.expert}] : nullptr;
    if (x) x->index = sp.expert;
    switch (sp.role) {
      case ParamRole::Wte:
        wte = p;
        break;
      case ParamRole::Wpe:
        wpe = p;
        break;
      case ParamRole::Ln1W:
        L->ln1_w = p;
        break;
      case ParamRole::Ln1B:
        L->ln1_b = p;
        break;
      case ParamRole::AttnW:
        L->attn_w = p;
        break;
      case ParamRole::AttnB:
        L->attn_b = p;
        break;
      case ParamRole::AttnProjW:
        L->proj_w = p;
        break;
      case ParamRole::AttnProjB:
        L->proj_b = p;
        break;
      case ParamRole::Ln2W:
        L->ln2_w = p;
        break;
      case ParamRole::Ln2B:
        L->ln2_b = p;
        break;
      case ParamRole::FcW:
        L->fc_w = p;
        break;
      case ParamRole::FcB:
        L->fc_b = p;
        break;
      case ParamRole::FcProjW:
        L->fcp_w = p;
        break;
      case ParamRole::FcProjB:
        L->fcp_b = p;
        break;
      case ParamRole::Router:
        L->router = p;
        break;
      case ParamRole::ExpertFcW:
        x->fc_w = p;
        break;
      case ParamRole::ExpertFcB:
        x->fc_b = p;
        break;
      case ParamRole::ExpertProjW:
        x->proj_w = p;
        break;
      case ParamRole::ExpertProjB:
        x->proj_b = p;
        break;
      case ParamRole::LnfW:
        lnf_w = p;
        break;
      case ParamRole::LnfB:
        lnf_b = p;
        break;
      case ParamRole::LmHead:
        lm_head = p;
        break;
    }
  }

  // The stage's layers in order, each with its experts by index.
  std::vector<Layer> finish() {
    for (auto& [key, x] : experts) layers[key.first].experts.push_back(x);
    std::vector<Layer> out;
    for (auto& [li, layer] : layers) out.push_back(std::move(layer));
    return out;
  }
};

}  // namespace moescope::engine
