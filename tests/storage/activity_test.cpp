#include "storage/activity.h"

#include <gtest/gtest.h>

#include "tests/storage/trace_builder.h"

namespace moescope::storage {
namespace {

TEST(Activity, GroupsHostTracksByRankWithTheirStage) {
  auto trace = testing::TraceBuilder(2)
                   .rank(0, 0)
                   .rank(1, 1)
                   .span(1, 30, 40, Category::Optimizer, 2)
                   .span(0, 10, 20, Category::CommPpSendrecv, 1, 64)
                   .span(0, 0, 5, Category::ComputeAttention, 1)
                   .build();
  // A second host track of rank 0 and a GPU stream track, whose spans are not host activity.
  trace.tracks.push_back({2, 0, TrackKind::HostThread, "rank 0 comm", 1, kNone, kNone});
  trace.tracks.push_back({3, 0, TrackKind::GpuStream, "stream 7", 2, 0, 7});
  addSpan(trace, {2, 3, 12, 0, Category::CommTpAllreduce, Phase::Forward, 1});
  addSpan(trace, {3, 1, 2, 0, Category::ComputeExpert});
  finishTrace(trace);

  const auto ranks = hostActivity(trace);
  ASSERT_EQ(ranks.size(), 2u);
  EXPECT_EQ(ranks[0].rank, 0);
  EXPECT_EQ(ranks[0].stage, 0);
  EXPECT_EQ(ranks[0].items, (std::vector<Activity>{{0, 5, Category::ComputeAttention, 1, 0},
                                                   {3, 12, Category::CommTpAllreduce, 1, 0},
                                                   {10, 20, Category::CommPpSendrecv, 1, 64}}));
  EXPECT_EQ(ranks[1].stage, 1);
  EXPECT_EQ(ranks[1].items, (std::vector<Activity>{{30, 40, Category::Optimizer, 2, 0}}));
}

// Only completed steps count: a run that lists its completed steps (steps.recorded = step_metric)
// drops the spans of step 2, which a stop cut short; spans without a step stay. A run that does not
// list them (an import, a generated run) keeps every step.
TEST(Activity, OnlyCompletedStepsCountWhenTheRunListsThem) {
  auto trace = testing::TraceBuilder(1)
                   .rank(0, 0)
                   .span(0, 0, 10, Category::ComputeAttention, 0)
                   .span(0, 10, 20, Category::ComputeAttention, 1)
                   .span(0, 20, 25, Category::ComputeAttention, 2)
                   .span(0, 25, 26, Category::Wait, kNone)
                   .build();
  EXPECT_EQ(hostActivity(trace)[0].items.size(), 4u);
  trace.meta.emplace_back(std::string(kMetaStepsRecorded), std::string(kStepsInStepMetric));
  trace.steps.push_back({0});
  trace.steps.push_back({1});
  const auto items = hostActivity(trace)[0].items;
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].step, 0);
  EXPECT_EQ(items[1].step, 1);
  EXPECT_EQ(items[2].step, kNone);
  trace.steps.clear();  // stopped before its first step completed: no step counts
  EXPECT_EQ(hostActivity(trace)[0].items.size(), 1u);
}

}  // namespace
}  // namespace moescope::storage
