#include "storage/analysis_bubbles.h"

#include <gtest/gtest.h>

#include "tests/storage/trace_builder.h"

namespace moescope::storage {
namespace {

TEST(Bubbles, TheoreticalShare) {
  EXPECT_DOUBLE_EQ(theoreticalBubbleShare(Schedule::GPipe, 2, 2), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(theoreticalBubbleShare(Schedule::OneFOneB, 4, 8), 3.0 / 11.0);
  EXPECT_DOUBLE_EQ(theoreticalBubbleShare(Schedule::OneFOneB, 1, 8), 0.0);
  EXPECT_DOUBLE_EQ(theoreticalBubbleShare(Schedule::GPipe, 0, 8), 0.0);
  // Interleaved: each of the p - 1 idle slots is a chunk's pass, 1/v of 1F1B's.
  EXPECT_DOUBLE_EQ(theoreticalBubbleShare(Schedule::Interleaved, 4, 8, 2), 3.0 / 19.0);
  EXPECT_DOUBLE_EQ(theoreticalBubbleShare(Schedule::Interleaved, 4, 8, 1), 3.0 / 11.0);
  // ZB-H1: a third of 1F1B's idle time, over m steady F + B + W.
  EXPECT_DOUBLE_EQ(theoreticalBubbleShare(Schedule::ZbH1, 4, 8), 3.0 / 27.0);
  RunInfo run;
  run.schedule = Schedule::Interleaved;
  run.pp = 4;
  run.microbatches = 8;
  run.virtual_stages = 2;
  EXPECT_DOUBLE_EQ(theoreticalBubbleShare(run), 3.0 / 19.0);
}

// A hand-drawn GPipe step, p = 2 stages, m = 2 micro-batches, forward 100 ns, backward 200 ns
// (time in units of 100 ns):
//
//            0   1   2   3   4   5   6   7   8   9
//   stage 0  |F0 |F1 |.......wait.......|B0     |B1     |
//   stage 1  |wt |F0 |F1 |B0     |B1     |. . . .|
//
// The step runs from 0 to 900 ns. Each stage computes 2 x 100 + 2 x 200 = 600 ns, so each idles
// 300 ns: stage 0 from 200 to 500 (a `wait` span, which does not count as busy), stage 1 from 0 to 100
// (a `wait`) and from 700 to 900 (no span at all). Bubble share = 300 / 900 = 1/3, exactly the
// schedule's (p - 1) / (m + p - 1) = 1 / 3.
Trace gpipeStep() {
  return testing::TraceBuilder(2, 2)
      .rank(0, 0)
      .rank(1, 1)
      .span(0, 0, 100, Category::ComputeAttention)    // F0
      .span(0, 100, 200, Category::ComputeAttention)  // F1
      .span(0, 200, 500, Category::Wait)
      .span(0, 500, 700, Category::ComputeExpert)  // B0
      .span(0, 700, 900, Category::ComputeExpert)  // B1
      .span(1, 0, 100, Category::Wait)
      .span(1, 100, 200, Category::ComputeAttention)  // F0
      .span(1, 200, 300, Category::ComputeAttention)  // F1
      .span(1, 300, 500, Category::ComputeExpert)     // B0
      .span(1, 500, 700, Category::ComputeExpert)     // B1
      .build();
}

TEST(Bubbles, HandDrawnGPipeStepMatchesTheSchedule) {
  const Trace t = gpipeStep();
  const auto rows = bubbles(hostActivity(t), t.run);
  ASSERT_EQ(rows.size(), 2u);
  for (int32_t stage = 0; stage < 2; ++stage) {
    const auto& r = rows[static_cast<size_t>(stage)];
    EXPECT_EQ(r.stage, stage);
    EXPECT_EQ(r.step, 0);
    EXPECT_EQ(r.ranks, 1);
    EXPECT_EQ(r.extent_ns, 900);
    EXPECT_EQ(r.bubble_ns, 300);
    EXPECT_EQ(r.max_bubble_ns, 300);
    EXPECT_DOUBLE_EQ(r.share, 1.0 / 3.0);
    EXPECT_DOUBLE_EQ(r.theoretical_share, 1.0 / 3.0);
  }
}

// Stage 0 has two tensor-parallel ranks in two steps. Step 0 runs 0-100, step 1 runs 200-400.
// Step 0: rank 0 busy 0-100 (bubble 0), rank 1 busy 0-40 and 60-100 (bubble 20); mean 10, worst 20.
// Step 1: rank 0 busy 200-300 (bubble 100), rank 1 has nothing in step 1 (bubble 200); mean 150.
// Over both steps: extent 300, bubble 160, worst 220, share 160/300.
TEST(Bubbles, StageIsTheMeanOfItsRanksAndTheWorstIsKept) {
  const Trace t = testing::TraceBuilder(1, 4)
                      .rank(0, 0)
                      .rank(1, 0)
                      .span(0, 0, 100, Category::ComputeExpert, 0)
                      .span(1, 0, 40, Category::ComputeExpert, 0)
                      .span(1, 60, 100, Category::CommTpAllreduce, 0)
                      .span(1, 70, 90, Category::ComputeRouter, 0)  // nested: counted once
                      .span(0, 200, 300, Category::ComputeExpert, 1)
                      .span(0, 350, 400, Category::Wait, 1)
                      .build();
  const auto rows = bubbles(hostActivity(t), t.run);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (StageStepBubble{0, 0, 2, 100, 10, 20, 0.1, 0.0}));
  EXPECT_EQ(rows[1], (StageStepBubble{0, 1, 2, 200, 150, 200, 0.75, 0.0}));
  const auto perStage = bubblesPerStage(rows);
  ASSERT_EQ(perStage.size(), 1u);
  EXPECT_EQ(perStage[0].step, kNone);
  EXPECT_EQ(perStage[0].extent_ns, 300);
  EXPECT_EQ(perStage[0].bubble_ns, 160);
  EXPECT_EQ(perStage[0].max_bubble_ns, 220);
  EXPECT_DOUBLE_EQ(perStage[0].share, 160.0 / 300.0);
}

}  // namespace
}  // namespace moescope::storage
