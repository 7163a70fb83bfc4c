#include "engine/layout.h"

#include <gtest/gtest.h>

namespace moescope::engine {
namespace {

Config layoutConfig(int pp, int tp, int dp, MoeLayout layout = MoeLayout::PPMoE) {
  Config c;
  c.model.n_layers = 5;
  c.parallel.pp = pp;
  c.parallel.tp = tp;
  c.parallel.dp = dp;
  c.parallel.layout = layout;
  c.train.global_batch = 8;
  return c;
}

TEST(Layout, RankOrderIsTpFastestThenDpThenStage) {
  const Layout l(layoutConfig(2, 2, 3));
  EXPECT_EQ(l.worldSize(), 12);
  for (int rank = 0; rank < 12; ++rank) {
    const RankCoord c = l.coord(rank);
    EXPECT_EQ(rank, (c.stage * 3 + c.dp) * 2 + c.tp);
    EXPECT_EQ(l.rankOf(c.stage, c.dp, c.tp), rank);
  }
  EXPECT_EQ(l.coord(7), (RankCoord{7, 1, 0, 1}));
}

TEST(Layout, LayersSplitContiguously) {
  const Layout l(layoutConfig(2, 1, 1));
  EXPECT_EQ(l.chunks(0), (std::vector<LayerRange>{{0, 3}}));
  EXPECT_EQ(l.chunks(1), (std::vector<LayerRange>{{3, 5}}));
}

// Megatron-Core's placement: model chunk c x pp + s on stage s, 8 layers in pp 2 x v 2 chunks of 2.
TEST(Layout, InterleavedStagesHoldChunksApart) {
  Config c = layoutConfig(2, 1, 1);
  c.model.n_layers = 8;
  c.parallel.schedule = Schedule::Interleaved;
  c.parallel.virtual_stages = 2;
  const Layout l(c);
  EXPECT_EQ(l.chunks(0), (std::vector<LayerRange>{{0, 2}, {4, 6}}));
  EXPECT_EQ(l.chunks(1), (std::vector<LayerRange>{{2, 4}, {6, 8}}));
}

TEST(Layout, ExpertsSplitOverTpForPpmoeAndOverDpForDpmoe) {
  const Layout pp(layoutConfig(1, 4, 2));
  EXPECT_EQ(pp.expertsPerRank(), 2);
  EXPECT_EQ(pp.firstExpert(pp.coord(pp.rankOf(0, 1, 3))), 6);
  const Layout dp(layoutConfig(1, 1, 4, MoeLayout::DPMoE));
  EXPECT_EQ(dp.expertsPerRank(), 2);
  EXPECT_EQ(dp.firstExpert(dp.coord(2)), 4);
  EXPECT_EQ(dp.expertOwnerDp(5), 2);
}

TEST(Layout, Groups) {
  const Layout l(layoutConfig(2, 2, 2));
  const RankCoord c = l.coord(5);  // stage 1, dp 0, tp 1
  EXPECT_EQ(l.tpGroup(c), (std::vector<int>{4, 5}));
  EXPECT_EQ(l.dpGroup(c), (std::vector<int>{5, 7}));
  EXPECT_EQ(l.ppGroup(c), (std::vector<int>{1, 5}));
}

TEST(Layout, SequenceOrderFollowsModelMd) {
  Config c = layoutConfig(1, 1, 2);
  c.parallel.microbatches = 2;  // b = 8 / (2 * 2) = 2
  // Step 3, replica 1, micro-batch 1, row 0: 3 * 8 + 1 * 4 + 1 * 2 + 0.
  EXPECT_EQ(sequenceIndex(c, 3, 1, 1, 0), 30);
  EXPECT_EQ(sequenceIndex(c, 0, 0, 0, 1), 1);
}

}  // namespace
}  // namespace moescope::engine
