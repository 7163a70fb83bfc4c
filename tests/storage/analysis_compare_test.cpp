#include "storage/analysis_compare.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "trace_builder.h"

namespace moescope::storage {
namespace {

using testing::TraceBuilder;
constexpr int64_t M = 1'000'000;  // 1 ms in ns

// Two stages of one rank each, 900 tokens per step, three steps (0 is the warm-up).
//   step 0: rank 0 attention [0, 50)                                      (left out)
//   step 1: rank 0 attention [100, 120), tp all-reduce [120, 130); rank 1 attention [130, 140)
//   step 2: rank 0 attention [200, 220), tp all-reduce [220, 230); rank 1 attention [230, 250)
Trace ppRun() {
  Trace t = TraceBuilder(2, 1)
                .rank(0, 0)
                .rank(1, 1)
                .span(0, 0, 50 * M, Category::ComputeAttention, 0)
                .span(0, 100 * M, 120 * M, Category::ComputeAttention, 1)
                .span(0, 120 * M, 130 * M, Category::CommTpAllreduce, 1)
                .span(1, 130 * M, 140 * M, Category::ComputeAttention, 1)
                .span(0, 200 * M, 220 * M, Category::ComputeAttention, 2)
                .span(0, 220 * M, 230 * M, Category::CommTpAllreduce, 2)
                .span(1, 230 * M, 250 * M, Category::ComputeAttention, 2)
                .build();
  t.run.name = "pp";
  t.run.layout = "ppmoe";
  t.run.tokens_per_step = 900;
  t.run.pp = 2;
  t.run.microbatches = 2;
  t.run.schedule = Schedule::OneFOneB;
  return t;
}

// The same shape with an all-to-all instead of the all-reduce; both measured steps 60 ms.
//   step 0: rank 0 attention [0, 10)                                      (left out)
//   step s (1, 2), at b = 100 s: rank 0 attention [b, b+20), all-to-all [b+20, b+50);
//                               rank 1 attention [b+50, b+60)
Trace dpRun() {
  TraceBuilder b(2, 1);
  b.rank(0, 0).rank(1, 1).span(0, 0, 10 * M, Category::ComputeAttention, 0);
  for (int32_t s = 1; s <= 2; ++s) {
    const int64_t base = 100 * s * M;
    b.span(0, base, base + 20 * M, Category::ComputeAttention, s)
        .span(0, base + 20 * M, base + 50 * M, Category::CommEpAlltoall, s)
        .span(1, base + 50 * M, base + 60 * M, Category::ComputeAttention, s);
  }
  Trace t = b.build();
  t.run.name = "dp";
  t.run.layout = "dpmoe";
  t.run.tokens_per_step = 900;
  t.run.pp = 2;
  t.run.microbatches = 2;
  t.run.schedule = Schedule::ZbH1;
  return t;
}

TEST(AnalysisCompare, SummaryLeavesOutTheWarmUpStep) {
  const RunSummary s = summarizeRun(ppRun());
  EXPECT_EQ(s.name, "pp");
  EXPECT_EQ(s.ranks, 2);
  EXPECT_EQ(s.skipped_step, 0);
  EXPECT_EQ(s.steps, 2);
  // Measured extents 40 and 50 ms: the median of two is the lower middle.
  EXPECT_EQ(s.step_ns, 40 * M);
  // 2 x 900 tokens over 90 ms.
  EXPECT_DOUBLE_EQ(s.tokens_per_s, 1800 / 0.090);
  // Bubbles: step 1 rank 0 40-30 = 10, rank 1 40-10 = 30; step 2 rank 0 50-30 = 20, rank 1 50-20 = 30;
  // 90 over 2 stages x (40 + 50) = 180.
  EXPECT_DOUBLE_EQ(s.bubble_share, 0.5);
  // Attention on all ranks and measured steps 20 + 10 + 20 + 20 = 70 over 2 ranks x 2 steps; the
  // all-reduce 10 + 10 = 20 over 4.
  EXPECT_EQ(s.busy_per_step[Category::ComputeAttention], 70 * M / 4);
  EXPECT_EQ(s.busy_per_step[Category::CommTpAllreduce], 5 * M);
  EXPECT_EQ(s.busy_per_step[Category::CommEpAlltoall], 0);
}

TEST(AnalysisCompare, OneStepIsKept) {
  Trace t = TraceBuilder(1, 1).rank(0, 0).span(0, 0, 10 * M, Category::ComputeExpert, 3).build();
  t.run.tokens_per_step = 100;
  const RunSummary s = summarizeRun(t);
  EXPECT_EQ(s.skipped_step, kNone);
  EXPECT_EQ(s.steps, 1);
  EXPECT_EQ(s.step_ns, 10 * M);
  EXPECT_DOUBLE_EQ(s.tokens_per_s, 100 / 0.010);
  EXPECT_DOUBLE_EQ(s.bubble_share, 0);
  EXPECT_EQ(s.busy_per_step[Category::ComputeExpert], 10 * M);
}

TEST(AnalysisCompare, TableRatiosAndLargestDifferences) {
  const std::vector<RunSummary> runs = {summarizeRun(ppRun()), summarizeRun(dpRun())};
  const Comparison c = compareRuns(runs, 0);
  ASSERT_EQ(c.rows.size(), 7u);
  std::vector<std::string> keys;
  for (const CompareRow& r : c.rows) keys.push_back(r.key);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"step_time", "tokens_per_s", "bubble_share", "theoretical_bubble_share",
                                      "compute.attention", "comm.tp_allreduce", "comm.ep_alltoall"}));
  // Step time 40 against 60 ms: x1.5, weighing |1.5 - 1|.
  EXPECT_EQ(c.rows[0].values, (std::vector<double>{40, 60}));
  EXPECT_EQ(c.rows[0].ratios, (std::vector<double>{1, 1.5}));
  EXPECT_EQ(c.rows[0].weights, (std::vector<double>{0, 0.5}));
  // tokens/s 1800 / 0.09 = 20000 against 1800 / 0.12 = 15000: x0.75.
  EXPECT_DOUBLE_EQ(c.rows[1].values[0], 20000);
  EXPECT_DOUBLE_EQ(c.rows[1].values[1], 15000);
  EXPECT_DOUBLE_EQ(c.rows[1].ratios[1], 0.75);
  EXPECT_DOUBLE_EQ(c.rows[1].weights[1], 0.25);
  // dp bubbles: per step rank 0 60-50 = 10, rank 1 60-10 = 50, 60 of 120: also half. No difference.
  EXPECT_EQ(c.rows[2].values, (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(c.rows[2].weights, (std::vector<double>{0, 0}));
  // The schedules' shares, pp 2 and 2 micro-batches: 1F1B 1/3, ZB-H1 1/7; theory weighs nothing.
  EXPECT_DOUBLE_EQ(c.rows[3].values[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(c.rows[3].values[1], 1.0 / 7);
  EXPECT_EQ(c.rows[3].weights, (std::vector<double>{0, 0}));
  // Attention 17.5 against (20 + 10) x 2 / 4 = 15 ms: |15 - 17.5| / 40 ms of baseline step.
  EXPECT_EQ(c.rows[4].values, (std::vector<double>{17.5, 15}));
  EXPECT_DOUBLE_EQ(c.rows[4].ratios[1], 15 / 17.5);
  EXPECT_DOUBLE_EQ(c.rows[4].weights[1], 2.5 / 40);
  // The all-reduce 5 ms against none: x0, weight 5 / 40.
  EXPECT_EQ(c.rows[5].values, (std::vector<double>{5, 0}));
  EXPECT_EQ(c.rows[5].ratios, (std::vector<double>{1, 0}));
  EXPECT_DOUBLE_EQ(c.rows[5].weights[1], 0.125);
  // The all-to-all: none in the baseline, so no ratio; 30 x 2 / 4 = 15 ms, weight 15 / 40.
  EXPECT_EQ(c.rows[6].values, (std::vector<double>{0, 15}));
  EXPECT_EQ(c.rows[6].ratios, (std::vector<double>{0, 0}));
  EXPECT_DOUBLE_EQ(c.rows[6].weights[1], 0.375);
  // Heaviest first: step time 0.5, all-to-all 0.375, tokens/s 0.25 (then all-reduce 0.125, cut).
  EXPECT_EQ(c.largest, (std::vector<CompareDifference>{{0, 1, 0.5}, {6, 1, 0.375}, {1, 1, 0.25}}));
  EXPECT_TRUE(isLargestDifference(c, 6, 1));
  EXPECT_FALSE(isLargestDifference(c, 5, 1));
}

TEST(AnalysisCompare, AnotherBaseline) {
  const std::vector<RunSummary> runs = {summarizeRun(ppRun()), summarizeRun(dpRun())};
  const Comparison c = compareRuns(runs, 1, 10);
  EXPECT_EQ(c.baseline, 1u);
  // 40 against 60 ms: x(2/3), weight 1/3.
  EXPECT_DOUBLE_EQ(c.rows[0].ratios[0], 40.0 / 60);
  EXPECT_DOUBLE_EQ(c.rows[0].weights[0], 1 - 40.0 / 60);
  EXPECT_EQ(c.rows[0].weights[1], 0);
  // All-reduce 5 ms where the baseline has none: (5 - 0) / 60 ms.
  EXPECT_DOUBLE_EQ(c.rows[5].weights[0], 5.0 / 60);
  // Every weight of at least 1%: step, tokens/s, attention, all-reduce, all-to-all.
  EXPECT_EQ(c.largest.size(), 5u);
}

// Peak activation memory: the largest stage's counter, where a run recorded one; a row of its own.
TEST(AnalysisCompare, PeakActivationMemoryWhereRecorded) {
  Trace pp = ppRun();
  pp.tracks.push_back({2, 1, TrackKind::Counter, std::string(kPeakActivationCounter), 1, kNone, kNone});
  pp.counters = {{2, 100 * M, 3 << 20}, {2, 200 * M, 4 << 20}};
  pp.run.schedule = Schedule::Interleaved;
  pp.run.virtual_stages = 2;
  const std::vector<RunSummary> runs = {summarizeRun(pp), summarizeRun(dpRun())};
  EXPECT_EQ(runs[0].peak_activation_bytes, 4 << 20);
  EXPECT_EQ(runs[0].schedule, "interleaved (v 2)");
  EXPECT_EQ(runs[1].peak_activation_bytes, 0);
  const Comparison c = compareRuns(runs);
  ASSERT_EQ(c.rows.size(), 8u);
  EXPECT_EQ(c.rows[4].key, "peak_activation");
  EXPECT_EQ(c.rows[4].unit, CompareUnit::Bytes);
  EXPECT_EQ(c.rows[4].values, (std::vector<double>{4 << 20, 0}));
  EXPECT_NE(formatComparison(c).find("4.00 MiB"), std::string::npos) << formatComparison(c);
}

// Peak device memory: a row when any run counted it. A run that did not (0: a CPU run) has no value
// there, shown as a dash without a ratio and never among the largest differences; between two runs
// that counted it the row weighs as tokens/s does (|ratio - 1|).
TEST(AnalysisCompare, PeakDeviceMemoryWhereCounted) {
  constexpr int64_t GiB = int64_t{1} << 30;
  Trace pp = ppRun();
  pp.steps.push_back(StepMetric{.step = 1, .tokens = 900, .peak_memory_bytes = 8 * GiB});
  Trace wider = ppRun();
  wider.run.name = "pp wide";
  wider.steps.push_back(StepMetric{.step = 1, .tokens = 900, .peak_memory_bytes = 12 * GiB});
  const Trace cpu = dpRun();
  for (const CompareRow& r :
       compareRuns(std::vector<RunSummary>{summarizeRun(cpu), summarizeRun(dpRun())}).rows)
    EXPECT_NE(r.key, "peak_device_memory") << "no row where no run counted it";

  const std::vector<RunSummary> runs = {summarizeRun(pp), summarizeRun(wider), summarizeRun(cpu)};
  EXPECT_EQ(runs[0].peak_device_memory_bytes, 8 * GiB);
  EXPECT_EQ(runs[2].peak_device_memory_bytes, 0);
  const Comparison c = compareRuns(runs, 0, 100);
  auto row = std::find_if(c.rows.begin(), c.rows.end(),
                          [](const CompareRow& r) { return r.key == "peak_device_memory"; });
  ASSERT_NE(row, c.rows.end());
  const auto index = static_cast<size_t>(row - c.rows.begin());
  EXPECT_EQ(row->label, "peak device memory");
  EXPECT_EQ(row->unit, CompareUnit::Bytes);
  EXPECT_EQ(row->values, (std::vector<double>{8.0 * GiB, 12.0 * GiB, 0}));
  EXPECT_DOUBLE_EQ(row->ratios[1], 1.5);
  EXPECT_DOUBLE_EQ(row->weights[1], 0.5);
  EXPECT_EQ(row->weights[2], 0);
  EXPECT_TRUE(hasValue(*row, 1));
  EXPECT_FALSE(hasValue(*row, 2));
  EXPECT_TRUE(isLargestDifference(c, index, 1));
  EXPECT_FALSE(isLargestDifference(c, index, 2));
  const std::string text = formatComparison(c);
  const std::string line = text.substr(text.find("peak device memory"));
  EXPECT_NE(line.find("8.00 GiB"), std::string::npos) << text;
  EXPECT_NE(line.find("12.00 GiB x1.50"), std::string::npos) << text;
  EXPECT_EQ(line.substr(0, line.find('\n')).find("x0.00"), std::string::npos) << text;
  const nlohmann::json j = comparisonToJson(c);
  EXPECT_EQ(j["runs"][1]["peak_device_memory_bytes"], 12 * GiB);
  EXPECT_FALSE(j["runs"][2].contains("peak_device_memory_bytes"));
}

TEST(AnalysisCompare, CsvAndJson) {
  const std::vector<RunSummary> runs = {summarizeRun(ppRun()), summarizeRun(dpRun())};
  const Comparison c = compareRuns(runs);
  const std::string csv = comparisonToCsv(c);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "key,label,unit,pp,pp ratio,dp,dp ratio");
  EXPECT_NE(csv.find("step_time,step time (median),ms,40,1,60,1.5\n"), std::string::npos);
  const nlohmann::json j = comparisonToJson(c);
  EXPECT_EQ(j["runs"][0]["skipped_step"], 0);
  EXPECT_EQ(j["rows"][6]["key"], "comm.ep_alltoall");
  EXPECT_EQ(j["runs"][1]["schedule"], "zb-h1");
  EXPECT_DOUBLE_EQ(j["runs"][1]["theoretical_bubble_share"].get<double>(), 1.0 / 7);
  EXPECT_EQ(j["largest"][1]["key"], "comm.ep_alltoall");
  EXPECT_EQ(j["largest"][1]["run"], "dp");
  EXPECT_NE(formatComparison(c).find("largest differences"), std::string::npos);
}

}  // namespace
}  // namespace moescope::storage
