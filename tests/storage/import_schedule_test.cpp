// Micro-batches from the schedule: the k-th forward and the k-th backward of a step are micro-batch k,
// in the orders 1F1B and GPipe run them on each stage (pp 4, 4 micro-batches).
#include "storage/import_schedule.h"

#include <gtest/gtest.h>

namespace moescope::storage {
namespace {

constexpr Phase F = Phase::Forward, B = Phase::Backward;

TEST(ImportSchedule, OneFOneB) {
  // Stage 0 of 4 warms up with 3 forwards, then alternates, then cools down.
  EXPECT_EQ(microbatchesOfPasses(Schedule::OneFOneB, 4, 0, std::vector{F, F, F, F, B, B, B, B}),
            (std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2, 3}));
  // Stage 2: one warm-up forward.
  EXPECT_EQ(microbatchesOfPasses(Schedule::OneFOneB, 4, 2, std::vector{F, F, B, F, B, F, B, B}),
            (std::vector<int32_t>{0, 1, 0, 2, 1, 3, 2, 3}));
  // The last stage alternates from the start.
  EXPECT_EQ(microbatchesOfPasses(Schedule::OneFOneB, 4, 3, std::vector{F, B, F, B, F, B, F, B}),
            (std::vector<int32_t>{0, 0, 1, 1, 2, 2, 3, 3}));
}

TEST(ImportSchedule, GPipeAndOtherPhases) {
  EXPECT_EQ(microbatchesOfPasses(Schedule::GPipe, 2, 1, std::vector{F, F, F, B, B, B}),
            (std::vector<int32_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(microbatchesOfPasses(Schedule::GPipe, 2, 0, std::vector{F, Phase::Optimizer, B}),
            (std::vector<int32_t>{0, kNone, 0}));
  EXPECT_TRUE(microbatchesOfPasses(Schedule::OneFOneB, 2, 0, std::vector<Phase>{}).empty());
}

// ZB-H1 stage 1 of 2 (F0 B0 F1 B1 W0 W1): B and W each in micro-batch order. Interleaved needs the
// chunks the names do not carry: nothing is numbered.
TEST(ImportSchedule, ZbH1NumbersWeightPassesAndInterleavedNone) {
  constexpr Phase W = Phase::BackwardWeight;
  EXPECT_EQ(microbatchesOfPasses(Schedule::ZbH1, 2, 1, std::vector{F, B, F, B, W, W}),
            (std::vector<int32_t>{0, 0, 1, 1, 0, 1}));
  EXPECT_EQ(microbatchesOfPasses(Schedule::Interleaved, 2, 0, std::vector{F, F, B, B}),
            (std::vector<int32_t>(4, kNone)));
}

}  // namespace
}  // namespace moescope::storage
