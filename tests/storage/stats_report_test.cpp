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
  EXPECT_EQ(text.find("peak activation"), std::string::npos) << "none was recorded";
}

// The schedule's theoretical share beside the measured one, and each stage's peak activation memory:
// the largest sample of its ranks' counters. Stage 0 (ranks 0, 1) 3 MiB, stage 1 (rank 2) 1 MiB.
TEST(StatsReport, TheoryBesideMeasurementAndPeakActivationPerStage) {
  Trace t = testing::TraceBuilder(3, 1)
                .rank(0, 0)
                .rank(1, 0)
                .rank(2, 1)
                .span(0, 0, 100, Category::ComputeAttention, 0)
                .span(1, 0, 100, Category::ComputeAttention, 0)
                .span(2, 50, 100, Category::ComputeAttention, 0)
                .build();
  t.run.schedule = Schedule::Interleaved;
  t.run.pp = 2;
  t.run.microbatches = 4;
  t.run.virtual_stages = 2;
  for (int32_t rank = 0; rank < 3; ++rank) {
    t.tracks.push_back({static_cast<int32_t>(t.tracks.size()), rank, TrackKind::Counter,
                        std::string(kPeakActivationCounter), 1, kNone, kNone});
  }
  t.counters = {{3, 100, 2 << 20}, {4, 100, 3 << 20}, {4, 200, 1 << 20}, {5, 100, 1 << 20}};
  const RunStats s = computeStats(t);
  ASSERT_EQ(s.stages.size(), 2u);
  EXPECT_EQ(s.stages[0].peak_activation_bytes, 3 << 20);
  EXPECT_EQ(s.stages[1].peak_activation_bytes, 1 << 20);
  // (p - 1) / (v m + p - 1) = 1 / 9.
  EXPECT_DOUBLE_EQ(s.stages[0].bubble.theoretical_share, 1.0 / 9);
  const nlohmann::json j = statsToJson(s);
  EXPECT_EQ(j["run"]["schedule"], "interleaved");
  EXPECT_EQ(j["run"]["virtual_stages"], 2);
  EXPECT_DOUBLE_EQ(j["run"]["theoretical_bubble_share"].get<double>(), 1.0 / 9);
  EXPECT_EQ(j["stages"][0]["peak_activation_bytes"], 3 << 20);
  const std::string text = formatStats(s);
  EXPECT_NE(text.find("interleaved (2 virtual stages), theoretical bubble 11.1%"), std::string::npos) << text;
  EXPECT_NE(text.find("peak activation memory"), std::string::npos) << text;
  EXPECT_NE(text.find("3.000"), std::string::npos) << text;
}

TEST(StatsReport, ARunWithoutSpansSaysSo) {
  Trace t;
  t.run.status = RunStatus::Running;
  EXPECT_NE(formatStats(computeStats(t)).find("no spans with a step in this run (yet"), std::string::npos);
}

}  // namespace
}  // namespace moescope::storage
