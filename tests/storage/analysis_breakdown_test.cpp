#include "storage/analysis_breakdown.h"

#include <gtest/gtest.h>

#include "trace_builder.h"

namespace moescope::storage {
namespace {

using testing::TraceBuilder;

// Stage 0 has ranks 0 and 1, stage 1 has rank 2.
//   step 0, extent [0, 100): rank 0 attention [0, 40), tp all-reduce [30, 50) (overlaps 10 with
//     attention), 400 bytes; rank 1 attention [0, 60); rank 2 wait [0, 60), expert [60, 100)
//   step 1, extent [100, 150): rank 0 attention [100, 150)
Trace run() {
  return TraceBuilder(2, 1)
      .rank(0, 0)
      .rank(1, 0)
      .rank(2, 1)
      .span(0, 0, 40, Category::ComputeAttention, 0)
      .span(0, 30, 50, Category::CommTpAllreduce, 0, 400)
      .span(1, 0, 60, Category::ComputeAttention, 0)
      .span(2, 0, 60, Category::Wait, 0)
      .span(2, 60, 100, Category::ComputeExpert, 0)
      .span(0, 100, 150, Category::ComputeAttention, 1)
      .build();
}

TEST(AnalysisBreakdown, StepsIntersecting) {
  const auto extents = stepExtents(hostActivity(run()));
  EXPECT_EQ(stepsIntersecting(extents, 90, 110), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(stepsIntersecting(extents, 100, 120), (std::vector<int32_t>{1}));
  EXPECT_TRUE(stepsIntersecting(extents, 150, 200).empty());
}

TEST(AnalysisBreakdown, OneStepPerRankAndStage) {
  const std::vector<int32_t> steps = {0};
  const Breakdown b = breakdownOfSteps(hostActivity(run()), steps);
  EXPECT_EQ(b.steps, steps);
  ASSERT_EQ(b.ranks.size(), 3u);
  // rank 0: attention 40, all-reduce 20; busy [0, 50) so bubble 100 - 50.
  EXPECT_EQ(b.ranks[0].rank, 0);
  EXPECT_EQ(b.ranks[0].busy[Category::ComputeAttention], 40);
  EXPECT_EQ(b.ranks[0].busy[Category::CommTpAllreduce], 20);
  EXPECT_EQ(b.ranks[0].bubble_ns, 50);
  EXPECT_EQ(b.ranks[0].extent_ns, 100);
  // rank 1: attention 60, bubble 40. rank 2: the wait is bubble: 100 - 40 = 60.
  EXPECT_EQ(b.ranks[1].bubble_ns, 40);
  EXPECT_EQ(b.ranks[2].busy[Category::Wait], 60);
  EXPECT_EQ(b.ranks[2].bubble_ns, 60);
  // Stage 0, the mean of ranks 0 and 1: attention (40 + 60) / 2, all-reduce 20 / 2, bubble 90 / 2.
  ASSERT_EQ(b.stages.size(), 2u);
  EXPECT_EQ(b.stages[0].rank, kNone);
  EXPECT_EQ(b.stages[0].ranks, 2);
  EXPECT_EQ(b.stages[0].busy[Category::ComputeAttention], 50);
  EXPECT_EQ(b.stages[0].busy[Category::CommTpAllreduce], 10);
  EXPECT_EQ(b.stages[0].bubble_ns, 45);
  EXPECT_EQ(b.stages[1].busy[Category::ComputeExpert], 40);
  // Communication: one all-reduce of 400 bytes in 20 ns = 20 GB/s; overlap 10 of 20.
  ASSERT_EQ(b.communication.size(), 1u);
  EXPECT_EQ(b.communication[0].count, 1);
  EXPECT_EQ(b.communication[0].bytes, 400);
  EXPECT_DOUBLE_EQ(b.communication[0].gbytes_per_s, 20);
  EXPECT_DOUBLE_EQ(b.overlap.ratio, 0.5);
}

TEST(AnalysisBreakdown, AllStepsWhenNoneChosen) {
  const Breakdown b = breakdownOfSteps(hostActivity(run()), {});
  EXPECT_EQ(b.steps, (std::vector<int32_t>{0, 1}));
  // rank 0: attention 40 + 50, extents 100 + 50, bubble 50 + 0; rank 1 idles through step 1.
  EXPECT_EQ(b.ranks[0].busy[Category::ComputeAttention], 90);
  EXPECT_EQ(b.ranks[0].extent_ns, 150);
  EXPECT_EQ(b.ranks[0].bubble_ns, 50);
  EXPECT_EQ(b.ranks[1].bubble_ns, 40 + 50);
}

}  // namespace
}  // namespace moescope::storage
