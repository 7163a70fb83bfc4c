#include "storage/analysis_steps.h"

#include <gtest/gtest.h>

#include "tests/storage/trace_builder.h"

namespace moescope::storage {
namespace {

// Step 0 spans 100-400 over both ranks, step 1 spans 500-1500; a span without a step is ignored.
// The run has 1000 tokens per step, step 1's metric says 3000: 1000 / 300 ns = 3.333e9 tokens/s and
// 3000 / 1000 ns = 3e9 tokens/s. Summary: median 300 (lower middle of two), mean 650,
// 4000 tokens / 1300 ns.
TEST(Steps, ExtentsTimesAndThroughput) {
  Trace t = testing::TraceBuilder(2)
                .rank(0, 0)
                .rank(1, 1)
                .span(0, 100, 200, Category::ComputeAttention, 0)
                .span(1, 250, 400, Category::ComputeAttention, 0)
                .span(0, 500, 1500, Category::Optimizer, 1)
                .span(1, 0, 5000, Category::Wait, kNone)
                .build();
  t.run.tokens_per_step = 1000;
  t.steps = {StepMetric{.step = 1, .tokens = 3000}};
  const auto extents = stepExtents(hostActivity(t));
  EXPECT_EQ(extents, (std::vector<StepExtent>{{0, 100, 400}, {1, 500, 1500}}));
  const auto times = stepTimes(extents, t.run, t.steps);
  ASSERT_EQ(times.size(), 2u);
  EXPECT_EQ(times[0].duration_ns, 300);
  EXPECT_EQ(times[0].tokens, 1000);
  EXPECT_DOUBLE_EQ(times[0].tokens_per_s, 1000 * 1e9 / 300);
  EXPECT_EQ(times[1].tokens, 3000);
  EXPECT_DOUBLE_EQ(times[1].tokens_per_s, 3e9);
  const StepSummary s = summarizeSteps(times);
  EXPECT_EQ(s.steps, 2);
  EXPECT_EQ(s.median_ns, 300);
  EXPECT_DOUBLE_EQ(s.mean_ns, 650.0);
  EXPECT_DOUBLE_EQ(s.tokens_per_s, 4000 * 1e9 / 1300);
  EXPECT_EQ(summarizeSteps({}), StepSummary{});
}

}  // namespace
}  // namespace moescope::storage
