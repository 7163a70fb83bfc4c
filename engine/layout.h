// Where the work of a parallel layout runs: rank <-> (stage, dp, tp) coordinates, the layers of each
// pipeline stage, the experts of each rank, the sequences of each replica and micro-batch.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/config.h"

namespace moescope::engine {

// Layers [begin, end) of the model.
struct LayerRange {
  int begin = 0, end = 0;
  bool operator==(const LayerRange&) const = default;
};

struct RankCoord {
  int rank = 0;
  int stage = 0;
  int dp = 0;
  int tp = 0;
  bool operator==(const RankCoord&) const = default;
};

class Layout {
 public:
  explicit Layout(const Config& config);

  int worldSize() const { return pp_ * tp_ * dp_; }
  int pp() const { return pp_; }
  int tp() const { return tp_; }
  int dp() const { return dp_; }
  // MODEL.md: rank = (stage * dp + d) * tp + t.
  int rankOf(int stage, int dp, int tp) const { return (stage * dp_ + dp) * tp_ + tp; }
  RankCoord coord(int rank) const;

  // A stage's model chunks in the order of its schedule's chunk index, each a run of consecutive layers.
  // One chunk per stage: the layers cut into pp contiguous runs, the first L % pp one layer longer.
  // Interleaved 1F1B with v virtual stages: L / (pp x v) layers each, chunk c of the stage being model
  // chunk c x pp + stage (Megatron-Core's placement).
  const std::vector<LayerRange>& chunks(int stage) const { return chunks_[static_cast<size_t>(stage)]; }

  // Experts of one MoE layer held by a rank: contiguous, E / tp per tp rank (ppmoe) or
  // E / dp per dp rank (dpmoe); all of them on a single rank.
  int expertsPerRank() const { return experts_per_rank_; }
  int firstExpert(const RankCoord& c) const;
  // The dp rank holding expert e under dpmoe.
  int expertOwnerDp(int expert) const { return expert / experts_per_rank_; }

  // Ranks of a group, ordered by their index inside the group.
  std::vector<int> tpGroup(const RankCoord& c) const;  // same stage and replica
  std::vector<int> dpGroup(const RankCoord& c) const;  // same stage and tp rank
  std::vector<int> ppGroup(const RankCoord& c) const;  // same replica and tp rank, by stage

 private:
  int pp_, tp_, dp_;
  std::vector<std::vector<LayerRange>> chunks_;  // per stage
  int experts_per_rank_ = 0;
  bool dpmoe_ = false;
};

// The run's sequences of step s: sequence index of replica d, micro-batch m, row i of that micro-batch.
inline int64_t sequenceIndex(const Config& c, int64_t step, int dp, int mb, int row) {
  int64_t per_replica = c.train.global_batch / c.parallel.dp;
  return step * c.train.global_batch + dp * per_replica + mb * c.microbatchSize() + row;
}

}  // namespace moescope::engine
