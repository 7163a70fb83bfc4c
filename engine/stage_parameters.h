// Which parameters one rank holds under a layout, and the part it holds of each: the embeddings on the
// first stage, the layers of its stage (attention and dense FFN sharded Megatron-style over the tp
// group, the experts it owns under PPMoE or DPMoE), the head on the last stage. Shared by every
// backend's StageExecutor, so that the layouts place parameters alike whatever computes them.
#pragma once

#include <vector>

#include "engine/config.h"
#include "engine/layout.h"
#include "engine/parameters.h"

namespace moescope::engine {

// What a parameter is in the model, so an executor can wire it into its layer structures.
enum class ParamRole {
  Wte, Wpe,
  Ln1W, Ln1B, AttnW, AttnB, AttnProjW, AttnProjB, Ln2W, Ln2B,
  FcW, FcB, FcProjW, FcProjB,             // dense FFN
  Router,                                 // MoE
  ExpertFcW, ExpertFcB, ExpertProjW, ExpertProjB,
  LnfW, LnfB, LmHead,
};

struct StageParam {
  ParamSpec spec;
  Shard shard;
  ParamRole role = ParamRole::Wte;
  int layer = -1;   // h.{layer}.*
  int expert = -1;  // moe.experts.{expert}.*
  bool tp_unique = false;  // not replicated over the tp group (a shard, a PPMoE expert, or tp == 1)
  bool dp_unique = false;  // not replicated over the dp group (a DPMoE expert): no dp all-reduce
};

// This rank's parameters in checkpoint order (embeddings, layers in order, experts by index, head).
std::vector<StageParam> stageParameters(const Config& config, const Layout& layout, const RankCoord& coord);

}  // namespace moescope::engine
