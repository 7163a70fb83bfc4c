#include "storage/analysis_busy.h"

#include <gtest/gtest.h>

#include "tests/storage/trace_builder.h"

namespace moescope::storage {
namespace {

// Stage 0 has ranks 0 and 1, stage 1 has rank 2.
// Rank 0, step 0: attention 0-100 and 50-150 (overlapping: union 150), all-reduce 150-200, wait 200-260.
// Rank 1, step 0: attention 0-50, expert 50-250.
// Stage 0 mean: attention (150 + 50) / 2 = 100, all-reduce 50 / 2 = 25, expert 200 / 2 = 100,
// wait 60 / 2 = 30; busy (everything but wait) (200 + 250) / 2 = 225.
// Rank 2: step 0 optimizer 300-310; a span without a step, 400-450 attention.
TEST(Busy, ByCategoryPerStageAndStep) {
  const Trace t = testing::TraceBuilder(2)
                      .rank(0, 0)
                      .rank(1, 0)
                      .rank(2, 1)
                      .span(0, 0, 100, Category::ComputeAttention)
                      .span(0, 50, 150, Category::ComputeAttention)
                      .span(0, 150, 200, Category::CommTpAllreduce)
                      .span(0, 200, 260, Category::Wait)
                      .span(1, 0, 50, Category::ComputeAttention)
                      .span(1, 50, 250, Category::ComputeExpert)
                      .span(2, 300, 310, Category::Optimizer)
                      .span(2, 400, 450, Category::ComputeAttention, kNone)
                      .build();
  const auto rows = busyByStageStep(hostActivity(t));
  ASSERT_EQ(rows.size(), 3u);
  StageStepBusy stage0;
  stage0.stage = 0;
  stage0.step = 0;
  stage0.ranks = 2;
  stage0.busy[Category::ComputeAttention] = 100;
  stage0.busy[Category::CommTpAllreduce] = 25;
  stage0.busy[Category::ComputeExpert] = 100;
  stage0.busy[Category::Wait] = 30;
  stage0.busy_ns = 225;
  EXPECT_EQ(rows[0], stage0);
  // Stage 1: the span without a step first (kNone sorts before 0).
  EXPECT_EQ(rows[1].stage, 1);
  EXPECT_EQ(rows[1].step, kNone);
  EXPECT_EQ(rows[1].busy[Category::ComputeAttention], 50);
  EXPECT_EQ(rows[2].step, 0);
  EXPECT_EQ(rows[2].busy[Category::Optimizer], 10);
  EXPECT_EQ(rows[2].busy_ns, 10);
}

}  // namespace
}  // namespace moescope::storage
