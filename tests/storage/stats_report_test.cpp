#include "storage/stats_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/storage/trace_builder.h"

namespace moescope::storage {
namespace {

// Two steps on one stage of one rank: step 0 is 0-100 with attention 0-60 and a wait 60-100,
// step 1 is 200-300 with attention 200-300. Busy per step: attention (60 + 100) / 2 = 80, wait 20.
// Bubbles: 40 + 0 over 200. Steps: 100 ns each, 500 tokens each: 5e9 tokens/s.
TEST(StatsReport, CombinesTheAnalysesPerStage) {
  Trace t = testing::TraceBuilder(1, 1)
                .rank(0, 0)
                .span(0, 0, 60, Category::ComputeAttention, 0)
                .span(0, 60, 100, Category::Wait, 0)
                .span(0, 200, 300, Category::ComputeAttention, 1)
                .build();
  t.run.name = "tiny";
  t.run.tokens_per_step = 500;
  const RunStats s = computeStats(t);
  EXPECT_EQ(s.spans, 3);
  ASSERT_EQ(s.stages.size(), 1u);
  EXPECT_EQ(s.stages[0].busy_per_step[Category::ComputeAttention], 80);
  EXPECT_EQ(s.stages[0].busy_per_step[Category::Wait], 20);
  EXPECT_EQ(s.stages[0].busy_ns_per_step, 80);
  EXPECT_EQ(s.stages[0].bubble.bubble_ns, 40);
  EXPECT_EQ(s.stages[0].bubble.extent_ns, 200);
  EXPECT_DOUBLE_EQ(s.stages[0].bubble.share, 0.2);
  EXPECT_EQ(s.step_summary.steps, 2);
  EXPECT_DOUBLE_EQ(s.step_summary.tokens_per_s, 5e9);
  EXPECT_TRUE(s.communication.empty());

  const nlohmann::json j = statsToJson(s);
  EXPECT_EQ(j["run"]["name"], "tiny");
  EXPECT_EQ(j["stages"][0]["busy_by_category_ns_per_step"]["compute.attention"], 80);
  EXPECT_DOUBLE_EQ(j["stages"][0]["bubble"]["share"].get<double>(), 0.2);
  EXPECT_EQ(j["steps"].size(), 2u);

  const std::string text = formatStats(s);
  EXPECT_NE(text.find("compute.attention"), std::string::npos);
  EXPECT_NE(text.find("20.0%"), std::string::npos) << text;
}

TEST(StatsReport, ARunWithoutSpansSaysSo) {
  Trace t;
  t.run.status = RunStatus::Running;
  EXPECT_NE(formatStats(computeStats(t)).find("no spans with a step in this run (yet"), std::string::npos);
}

}  // namespace
}  // namespace moescope::storage
