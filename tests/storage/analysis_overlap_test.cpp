#include "storage/analysis_overlap.h"

#include <gtest/gtest.h>

#include "tests/storage/trace_builder.h"

namespace moescope::storage {
namespace {

// Rank 0 (stage 0), on two tracks merged: compute 0-100 and 150-250; communication 50-200 and 180-300
// (merged 50-300, 250 ns). Intersection: 50-100 and 150-250 = 150 ns. Ratio 150/250 = 0.6.
// A wait 300-400 is neither. Rank 1 (stage 1): communication 0-100, no compute: ratio 0.
// The run: overlap 150 over communication 350.
TEST(Overlap, HolisticTraceAnalysisDefinition) {
  const Trace t = testing::TraceBuilder(2)
                      .rank(0, 0)
                      .rank(1, 1)
                      .span(0, 0, 100, Category::ComputeAttention)
                      .span(0, 150, 250, Category::MoeSlice)
                      .span(0, 50, 200, Category::CommTpAllreduce)
                      .span(0, 180, 300, Category::CommEpAlltoall)
                      .span(0, 300, 400, Category::Wait)
                      .span(1, 0, 100, Category::CommPpSendrecv)
                      .build();
  const auto ranks = hostActivity(t);
  const auto stages = overlapByStage(ranks);
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0], (OverlapStats{0, 250, 200, 150, 0.6}));
  EXPECT_EQ(stages[1], (OverlapStats{1, 100, 0, 0, 0.0}));
  const OverlapStats run = overlapOfRun(ranks);
  EXPECT_EQ(run.stage, kNone);
  EXPECT_EQ(run.overlap_ns, 150);
  EXPECT_EQ(run.comm_ns, 350);
  EXPECT_DOUBLE_EQ(run.ratio, 150.0 / 350.0);
}

}  // namespace
}  // namespace moescope::storage
