#include "storage/stats_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string_view>

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
  EXPECT_EQ(text.find("peak memory"), std::string::npos) << "none was recorded";
  EXPECT_EQ(text.find("memory   peak"), std::string::npos) << "no device memory was counted";
  EXPECT_EQ(s.peak_device_memory_bytes, 0);
  EXPECT_FALSE(j.contains("peak_device_memory_bytes"));
  EXPECT_FALSE(j["stages"][0].contains("peak_device_memory_bytes"));
}

// Two stages: ranks 0 and 1 on stage 0, rank 2 on stage 1, one step; with a counter track named
// `counter` for each rank (tracks 3, 4, 5).
Trace threeRanksWithCounters(std::string_view counter) {
  Trace t = testing::TraceBuilder(3, 1)
                .rank(0, 0)
                .rank(1, 0)
                .rank(2, 1)
                .span(0, 0, 100, Category::ComputeAttention, 0)
                .span(1, 0, 100, Category::ComputeAttention, 0)
                .span(2, 50, 100, Category::ComputeAttention, 0)
                .build();
  for (int32_t rank = 0; rank < 3; ++rank)
    t.tracks.push_back({static_cast<int32_t>(t.tracks.size()), rank, TrackKind::Counter, std::string(counter),
                        1, kNone, kNone});
  return t;
}

// The schedule's theoretical share beside the measured one, and each stage's peak activation memory:
// the largest sample of its ranks' counters. Stage 0 (ranks 0, 1) 3 MiB, stage 1 (rank 2) 1 MiB.
TEST(StatsReport, TheoryBesideMeasurementAndPeakActivationPerStage) {
  Trace t = threeRanksWithCounters(kPeakActivationCounter);
  t.run.schedule = Schedule::Interleaved;
  t.run.pp = 2;
  t.run.microbatches = 4;
  t.run.virtual_stages = 2;
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
  EXPECT_NE(text.find("peak memory per stage"), std::string::npos) << text;
  EXPECT_NE(text.find("activations"), std::string::npos) << text;
  EXPECT_NE(text.find("3.000"), std::string::npos) << text;
  EXPECT_EQ(text.find("device"), std::string::npos) << "no device memory was counted: " << text;
}

// The device memory peak: per stage the largest of its ranks' counters, for the run the largest of
// those and of the step metrics' peaks (the process holding rank 0 writes these). Stage 0 (ranks 0, 1)
// 5 GiB, stage 1 (rank 2) 2 GiB; a step metric says 6 GiB: the run's peak. Text in GiB, JSON in bytes.
TEST(StatsReport, PeakDeviceMemoryPerStageAndOfTheRun) {
  Trace t = threeRanksWithCounters(kPeakDeviceMemoryCounter);
  constexpr int64_t GiB = int64_t{1} << 30;
  t.counters = {{3, 100, 4.0 * GiB}, {4, 100, 5.0 * GiB}, {5, 100, 2.0 * GiB}};
  t.steps.push_back(StepMetric{.step = 0, .start_ns = 0, .end_ns = 100, .peak_memory_bytes = 6 * GiB});
  const RunStats s = computeStats(t);
  ASSERT_EQ(s.stages.size(), 2u);
  EXPECT_EQ(s.stages[0].peak_device_memory_bytes, 5 * GiB);
  EXPECT_EQ(s.stages[1].peak_device_memory_bytes, 2 * GiB);
  EXPECT_EQ(s.stages[0].peak_activation_bytes, 0);
  EXPECT_EQ(s.peak_device_memory_bytes, 6 * GiB);
  const nlohmann::json j = statsToJson(s);
  EXPECT_EQ(j["peak_device_memory_bytes"], 6 * GiB);
  EXPECT_EQ(j["stages"][1]["peak_device_memory_bytes"], 2 * GiB);
  const std::string text = formatStats(s);
  EXPECT_NE(text.find("memory   peak 6.00 GiB on one device"), std::string::npos) << text;
  EXPECT_NE(text.find("device memory the engine held"), std::string::npos) << text;
  EXPECT_NE(text.find("5120.000"), std::string::npos) << text;  // stage 0 in MiB
  EXPECT_EQ(text.find("activations"), std::string::npos) << "none were recorded: " << text;

  // Without the counters (a file whose ranks recorded none): the step metrics' peak alone.
  t.tracks.resize(3);
  t.counters.clear();
  const RunStats steps = computeStats(t);
  EXPECT_EQ(steps.peak_device_memory_bytes, 6 * GiB);
  EXPECT_EQ(steps.stages[0].peak_device_memory_bytes, 0);
  EXPECT_EQ(formatStats(steps).find("peak memory per stage"), std::string::npos);
}

TEST(StatsReport, ARunWithoutSpansSaysSo) {
  Trace t;
  t.run.status = RunStatus::Running;
  EXPECT_NE(formatStats(computeStats(t)).find("no spans with a step in this run (yet"), std::string::npos);
}

}  // namespace
}  // namespace moescope::storage
