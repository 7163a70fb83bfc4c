// The model and batch a run trained, read from the config TOML its run file keeps (MODEL.md), and
// the parameter counts the planner scales the optimizer and the gradient all-reduce by.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace moescope::planner {

struct ModelShape {
  int64_t vocab = 256, seq_len = 64, d_model = 128, heads = 4, layers = 4, d_ff = 512;
  int64_t experts = 8, top_k = 2, moe_every = 1;
  int64_t global_batch = 8;
  std::string layout = "ppmoe";  // "ppmoe" | "dpmoe" | "dense"
  bool isMoe(int64_t layer) const { return experts > 0 && layer % moe_every == moe_every - 1; }
  bool operator==(const ModelShape&) const = default;
};

// Reads the [model] and [train] keys the planner needs; keys left out take MODEL.md's defaults.
// Throws PlanError naming the problem when the text is not TOML or a value is out of range.
ModelShape parseModelShape(std::string_view config_toml, std::string_view layout);

// The parameters one rank holds for layers [begin, end) of a stage (plus the embeddings on the first
// stage and the head on the last), split as MODEL.md's layouts split them: attention and dense FFN
// weights over tp, experts over tp (ppmoe) or dp (dpmoe).
struct RankParameters {
  int64_t total = 0;
  int64_t replicated = 0;  // the part every data-parallel replica holds (what the gradient all-reduce sums)
  bool operator==(const RankParameters&) const = default;
};
RankParameters rankParameters(const ModelShape& m, int64_t begin, int64_t end, bool embeds, bool heads,
                              int tp, int dp);

}  // namespace moescope::planner
