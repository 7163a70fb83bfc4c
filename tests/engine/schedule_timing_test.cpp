#include "engine/schedule_timing.h"

#include <gtest/gtest.h>

#include <cmath>

namespace moescope::engine {
namespace {

using Kind = PipelineOp::Kind;

// Unit passes: a forward 1, a backward 2 (ZB-H1: B 1 and W 1), a chunk's pass 1/v of that.
ScheduleTiming unitTiming(const PipelineShape& s) {
  const PassCosts costs;
  return timeSchedule(s, [&](int, const PipelineOp& op) { return costs.of(s, op); });
}

// 1F1B on 2 stages, 2 micro-batches, one column per unit of time (a forward 1, a backward 2):
//   t        0  1  2  3  4  5  6  7  8
//   stage 0  F0 F1 .  .  B0 B0 .  B1 B1
//   stage 1  .  F0 B0 B0 F1 B1 B1 .  .
// Each stage works 6 of 9: the bubble is (p - 1) / (m + p - 1) = 1/3.
TEST(ScheduleTiming, OneFOneBOnTwoStagesDrawnByHand) {
  const ScheduleTiming t = unitTiming({Schedule::OneFOneB, 2, 2, 1});
  ASSERT_EQ(t.stages.size(), 2u);
  const std::vector<TimedPass> stage1 = {{1, {Kind::Forward, 0}, 1, 2},
                                         {1, {Kind::Backward, 0}, 2, 4},
                                         {1, {Kind::Forward, 1}, 4, 5},
                                         {1, {Kind::Backward, 1}, 5, 7}};
  EXPECT_EQ(t.stages[1], stage1);
  const std::vector<TimedPass> stage0 = {{0, {Kind::Forward, 0}, 0, 1},
                                         {0, {Kind::Forward, 1}, 1, 2},
                                         {0, {Kind::Backward, 0}, 4, 6},
                                         {0, {Kind::Backward, 1}, 7, 9}};
  EXPECT_EQ(t.stages[0], stage0);
  EXPECT_EQ(t.makespan, 9);
  EXPECT_DOUBLE_EQ(t.bubble_share[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(t.bubble_share[1], 1.0 / 3);
}

// The bubble shares docs/SCHEDULES.md gives, with a backward twice a forward and ZB-H1's B and W a
// forward each: (p - 1) / (m + p - 1) for GPipe and 1F1B, (p - 1) / (v m + p - 1) for interleaved,
// (p - 1) / (3 m + p - 1) for ZB-H1, on every stage.
TEST(ScheduleTiming, EachScheduleHasItsPublishedBubble) {
  for (int p = 2; p <= 5; ++p) {
    for (int m = p; m <= 4 * p; m += p) {
      const double gp = (p - 1.0) / (m + p - 1.0);
      for (Schedule sch : {Schedule::GPipe, Schedule::OneFOneB}) {
        const ScheduleTiming t = unitTiming({sch, p, m, 1});
        for (double share : t.bubble_share) EXPECT_NEAR(share, gp, 1e-12) << scheduleName(sch) << p << m;
      }
      const ScheduleTiming zb = unitTiming({Schedule::ZbH1, p, m, 1});
      for (double share : zb.bubble_share)
        EXPECT_NEAR(share, (p - 1.0) / (3.0 * m + p - 1.0), 1e-12) << p << m;
      for (int v = 2; v <= 3; ++v) {
        const ScheduleTiming t = unitTiming({Schedule::Interleaved, p, m, v});
        for (double share : t.bubble_share)
          EXPECT_NEAR(share, (p - 1.0) / (v * m + p - 1.0), 1e-12) << p << m << v;
      }
    }
  }
}

TEST(ScheduleTiming, ZbH1BeatsInterleavedBeatsOneFOneBOnTheSampleShape) {
  // The sample of docs/SCHEDULES.md: pp 4, 8 micro-batches, 2 chunks per stage.
  const double oneFOneB = unitTiming({Schedule::OneFOneB, 4, 8, 1}).bubble_share[0];
  const double gpipe = unitTiming({Schedule::GPipe, 4, 8, 1}).bubble_share[0];
  const double interleaved = unitTiming({Schedule::Interleaved, 4, 8, 2}).bubble_share[0];
  const double zb = unitTiming({Schedule::ZbH1, 4, 8, 1}).bubble_share[0];
  EXPECT_DOUBLE_EQ(gpipe, oneFOneB);
  EXPECT_LT(interleaved, oneFOneB);
  EXPECT_LT(zb, interleaved);
  EXPECT_NEAR(oneFOneB, 3.0 / 11, 1e-12);
  EXPECT_NEAR(interleaved, 3.0 / 19, 1e-12);
  EXPECT_NEAR(zb, 3.0 / 27, 1e-12);
}

TEST(ScheduleTiming, OrdersThatWaitOnEachOtherAreRefused) {
  // Stage 0 puts B0 before F0: B0 waits for stage 1's B0, which waits for stage 1's F0, which waits
  // for stage 0's F0.
  const PipelineShape s{Schedule::OneFOneB, 2, 1, 1};
  const std::vector<std::vector<PipelineOp>> orders = {{{Kind::Backward, 0}, {Kind::Forward, 0}},
                                                       {{Kind::Forward, 0}, {Kind::Backward, 0}}};
  EXPECT_THROW(timePasses(s, orders, [](int, const PipelineOp&) { return 1.0; }), std::logic_error);
  EXPECT_EQ(timePasses(s, {orders[1], orders[1]}, [](int, const PipelineOp&) { return 1.0; }).makespan, 4);
}

}  // namespace
}  // namespace moescope::engine
