// Where the work of a parallel layout runs: rank <-> (stage, dp, tp) coordinates, the layers of each
// pipeline stage, the experts of each rank, the sequences of each replica and micro-batch.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/config.h"

namespace moescope::engine {

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

  // Layers [first, last) of a stage: contiguous, the first L % pp stages one layer longer.
  int firstLayer(int stage) const;
  int lastLayer(int stage) const { return firstLayer(stage + 1); }

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
  int layers_;
  int experts_per_rank_ = 0;
  bool dpmoe_ = false;
};

// The run's sequences of step s: sequence index of replica d, micro-batch m, row i of that micro-batch.
inline int64_t sequenceIndex(const Config& c, int64_t step, int dp, int mb, int row) {
  int64_t per_replica = c.train.global_batch / c.parallel.dp;
  return step * c.train.global_batch + dp * per_replica + mb * c.microbatchSize() + row;
}

}  // namespace moescope::engine
