#include "storage/analysis_moe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "storage/sqlite_util.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

enum Name : uint32_t { kSpan, kMoeAllreduce, kExpert, kAttnAllreduce, kWait };

struct Builder {
  Trace t;
  Builder() {
    t.run.layout = "ppmoe";
    t.run.tp = 2;
    t.strings = {"span", std::string(kMoeAllreduceSpan), "expert", "attn_allreduce", "wait"};
    for (int32_t r = 0; r < 2; ++r) {
      t.ranks.push_back({r, 0, r, 0, kNone, "host"});
      t.tracks.push_back({r, r, TrackKind::HostThread, "rank", 0, kNone, kNone});
    }
  }
  Builder& span(int32_t rank, int64_t start, int64_t end, Name name, Category c, int32_t mb,
                int32_t expert = kNone) {
    SpanRecord s;
    s.track = rank;
    s.start = start;
    s.end = end;
    s.name = name;
    s.category = c;
    s.phase = Phase::Forward;
    s.step = 0;
    s.microbatch = mb;
    s.layer = 1;
    s.expert = expert;
    addSpan(t, s);
    return *this;
  }
};

// Two micro-batches of one MoE layer (1) under PPMoE, tp 2, E = 4, top_k 1: rank 0 computes experts 0
// and 1, rank 1 experts 2 and 3 (time in units of 100 ns):
//
//   micro-batch 0    0   1   2   3   4   5   6
//     rank 0         |e0 |e1 |...wait....|AR |      kept 10, 10  (20 tokens)
//     rank 1         |e2         |e3     |AR |      kept 30, 20  (50 tokens)
//   rank 0 arrives at 200, rank 1 at 500: rank 0 waits 300 ns for rank 1, the more loaded: imbalance.
//
//   micro-batch 1   10  11  12  13  14  15  16
//     rank 0         |e0     |e1         |AR |      kept 20, 20  (40 tokens)
//     rank 1         |e2 |e3 |.wait..|attn|AR |     kept 25, 25  (50 tokens)
//   rank 1 arrives at 1300 (its wait there), rank 0 at 1500: rank 1 waits 200 ns for rank 0, which
//   had fewer tokens: waiting, but not from imbalance. (Rank 1's `attn` is another tp all-reduce of
//   layer 1, not the MoE layer's: it is no arrival, and the wait before it is not this one's.)
Trace twoMicrobatches() {
  Builder b;
  const auto E = Category::ComputeExpert, W = Category::Wait, AR = Category::CommTpAllreduce;
  b.span(0, 0, 100, kExpert, E, 0, 0).span(0, 100, 200, kExpert, E, 0, 1).span(0, 200, 500, kWait, W, 0);
  b.span(0, 500, 600, kMoeAllreduce, AR, 0);
  b.span(1, 0, 300, kExpert, E, 0, 2)
      .span(1, 300, 500, kExpert, E, 0, 3)
      .span(1, 500, 600, kMoeAllreduce, AR, 0);
  b.span(0, 1000, 1200, kExpert, E, 1, 0).span(0, 1200, 1500, kExpert, E, 1, 1);
  b.span(0, 1500, 1600, kMoeAllreduce, AR, 1);
  b.span(1, 1000, 1100, kExpert, E, 1, 2).span(1, 1100, 1200, kExpert, E, 1, 3);
  b.span(1, 1200, 1250, kWait, W, 1).span(1, 1250, 1300, kAttnAllreduce, AR, 1);
  b.span(1, 1300, 1500, kWait, W, 1).span(1, 1500, 1600, kMoeAllreduce, AR, 1);
  b.t.routing = {{0, 0, 1, 0, 70, 0, {10, 10, 30, 20}}, {0, 1, 1, 0, 92, 2, {20, 20, 25, 25}}};
  finishTrace(b.t);
  return b.t;
}

TEST(AnalysisMoe, ImbalanceAndCvOfAGroup) {
  // mean 17.5: max / mean = 30 / 17.5; deviations -7.5, -7.5, 12.5, 2.5: sd = sqrt(275 / 4).
  EXPECT_DOUBLE_EQ(loadImbalance({10, 10, 30, 20}), 30 / 17.5);
  EXPECT_NEAR(loadCv({10, 10, 30, 20}), std::sqrt(275.0 / 4) / 17.5, 1e-12);
  EXPECT_DOUBLE_EQ(loadImbalance({5, 5, 5, 5}), 1.0);
  EXPECT_DOUBLE_EQ(loadCv({5, 5, 5, 5}), 0.0);
  EXPECT_DOUBLE_EQ(loadImbalance({0, 0, 8, 0}), 4.0);
  EXPECT_DOUBLE_EQ(loadImbalance({0, 0}), 0.0);
}

TEST(AnalysisMoe, HandDrawnWaitsAreAttributedToTheLastRank) {
  const MoeStats s = analyzeMoe(twoMicrobatches());
  EXPECT_EQ(s.experts, 4);
  EXPECT_EQ(s.steps, 1);
  EXPECT_EQ(s.collective, "tp all-reduce");
  ASSERT_EQ(s.layers.size(), 1u);
  const MoeLayerStats& l = s.layers[0];
  EXPECT_EQ(l.layer, 1);
  EXPECT_EQ(l.groups, 2);
  EXPECT_EQ(l.assignments, 162);
  EXPECT_EQ(l.kept, 160);
  EXPECT_EQ(l.dropped, 2);
  EXPECT_DOUBLE_EQ(l.dropped_share, 2.0 / 162);
  EXPECT_DOUBLE_EQ(l.imbalance, (30 / 17.5 + 25 / 22.5) / 2);
  EXPECT_DOUBLE_EQ(l.max_imbalance, 30 / 17.5);
  EXPECT_EQ(l.kept_per_expert, (std::vector<int64_t>{30, 30, 55, 45}));
  EXPECT_EQ(l.hot_expert, 2);
  EXPECT_DOUBLE_EQ(l.hot_share, 55.0 / 160);
  EXPECT_EQ(l.hot_rank, 1);
  EXPECT_EQ(l.collectives, 2);
  EXPECT_EQ(l.wait_ns, 500);
  EXPECT_EQ(l.imbalance_wait_ns, 300);
  EXPECT_EQ(l.waited_for_rank, 1);
  EXPECT_EQ(l.waited_for_ns, 300);
  ASSERT_EQ(s.ranks.size(), 2u);
  EXPECT_EQ(s.ranks[0], (MoeRankLoad{1, 0, 60, 100 + 100 + 200 + 300, 300, 200}));
  EXPECT_EQ(s.ranks[1], (MoeRankLoad{1, 1, 100, 300 + 200 + 100 + 100, 200, 300}));
  EXPECT_EQ(s.wait_ns, 500);
  EXPECT_EQ(s.imbalance_wait_ns, 300);
  const nlohmann::json j = moeStatsToJson(s);
  EXPECT_EQ(j["layers"][0]["waited_for_rank"], 1);
  EXPECT_EQ(j["layers"][0]["imbalance_wait_ns"], 300);
  EXPECT_NE(formatMoeStats(s).find("by imbalance"), std::string::npos);
  EXPECT_TRUE(formatMoeStats(analyzeMoe(Trace{})).empty());
}

// The CUDA stage computes a rank's experts in one span that names no expert: the experts' ranks then
// come from the layout (PPMoE: experts 0, 1 on tp rank 0 and 2, 3 on tp rank 1), with the same result.
TEST(AnalysisMoe, ExpertsWithoutTheirIndexAreFoundByTheLayout) {
  Trace t = twoMicrobatches();
  for (SpanColumns& c : t.spans) std::fill(c.expert.begin(), c.expert.end(), int16_t{kNone});
  const MoeStats named = analyzeMoe(twoMicrobatches()), byLayout = analyzeMoe(t);
  EXPECT_EQ(byLayout, named);
  t.run.tp = 3;  // 4 experts do not split over 3 ranks: no rank is known to hold any
  const MoeStats unknown = analyzeMoe(t);
  EXPECT_EQ(unknown.layers[0].hot_rank, kNone);
  EXPECT_EQ(unknown.layers[0].imbalance_wait_ns, 0);
  EXPECT_EQ(unknown.layers[0].wait_ns, 500);
}

TEST(AnalysisMoe, GridPerStepAndPerMicrobatch) {
  const Trace t = twoMicrobatches();
  const MoeLoadGrid perStep = moeLoadGrid(t, false);
  EXPECT_EQ(perStep.experts, 4);
  EXPECT_EQ(perStep.layers, (std::vector<int32_t>{1}));
  ASSERT_EQ(perStep.columns, (std::vector<MoeGridColumn>{{0, kNone}}));
  EXPECT_EQ(perStep.keptAt(2, 0), 55);
  EXPECT_EQ(perStep.assignmentsAt(0, 0), 162);
  EXPECT_EQ(perStep.droppedAt(0, 0), 2);
  EXPECT_DOUBLE_EQ(perStep.relativeAt(2, 0), 55.0 * 4 / 162);
  const MoeLoadGrid perMb = moeLoadGrid(t, true);
  ASSERT_EQ(perMb.columns, (std::vector<MoeGridColumn>{{0, 0}, {0, 1}}));
  EXPECT_EQ(perMb.keptAt(0, 1), 20);
  EXPECT_DOUBLE_EQ(perMb.relativeAt(2, 0), 30.0 * 4 / 70);
  EXPECT_DOUBLE_EQ(perMb.imbalanceAt(0, 0), 30 / 17.5);
}

TEST(AnalysisMoe, CsvHasALinePerExpert) {
  std::ostringstream out;
  EXPECT_EQ(exportMoeLoadCsv(twoMicrobatches(), out), 8);
  const std::string csv = out.str();
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "step,microbatch,layer,replica,assignments,dropped,expert,kept");
  EXPECT_NE(csv.find("\n0,1,1,0,92,2,3,25\n"), std::string::npos);
}

TEST(AnalysisMoe, RoutingRoundTripsThroughTheRunFileAndBadRowsAreRefused) {
  moescope::testing::TempDir dir;
  const Trace t = twoMicrobatches();
  const auto path = dir.path() / "moe.moescope";
  {
    auto w = RunWriter::create(path, t.run);
    w->addMoeRouting(t.routing);
    w->finish();
  }
  EXPECT_EQ(RunReader::open(path)->load().routing, t.routing);
  auto corrupt = [&](const char* sql) {
    sqlite::Db db(path, SQLITE_OPEN_READWRITE);
    db.exec(sql, "test");
  };
  corrupt("UPDATE moe_routing SET dropped = 100 WHERE microbatch = 1");
  EXPECT_THROW(RunReader::open(path)->load(), StorageError);
  corrupt("UPDATE moe_routing SET dropped = 2 WHERE microbatch = 1");
  corrupt("UPDATE moe_expert_load SET expert = -3 WHERE microbatch = 1 AND expert = 0");
  EXPECT_THROW(RunReader::open(path)->load(), StorageError);
  corrupt("UPDATE moe_expert_load SET expert = 0, microbatch = 7 WHERE microbatch = 1 AND expert = -3");
  try {
    RunReader::open(path)->load();
    ADD_FAILURE() << "an expert row without its group was read";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("moe_expert_load"), std::string::npos) << e.what();
  }
}

// Rows no writer writes, each refused with one line naming the table: an expert index that skips
// (a group's experts are dense from 0), a group with fewer experts than the others, an assignment count
// beyond 2^50, and layers and steps spread so far apart that the MoE view's grid would be far larger
// than the groups are many (an allocation of the file's choosing).
TEST(AnalysisMoe, RoutingRowsNoWriterWritesAreRefused) {
  moescope::testing::TempDir dir;
  const Trace t = twoMicrobatches();
  const auto written = dir.path() / "moe.moescope";
  {
    auto w = RunWriter::create(written, t.run);
    w->addMoeRouting(t.routing);
    w->finish();
  }
  int cases = 0;
  auto refusal = [&](const std::string& sql) -> std::string {
    const auto path = dir.path() / ("case" + std::to_string(cases++) + ".moescope");
    std::filesystem::copy_file(written, path);
    {
      sqlite::Db db(path, SQLITE_OPEN_READWRITE);
      db.exec(sql.c_str(), "test");
    }
    try {
      RunReader::open(path)->load();
    } catch (const StorageError& e) {
      return e.what();
    }
    return "read without a complaint";
  };
  EXPECT_NE(refusal("UPDATE moe_expert_load SET expert = 9 WHERE microbatch = 1 AND expert = 3")
                .find("moe_expert_load of step 0 names expert 9 where 3 was due"),
            std::string::npos);
  EXPECT_NE(refusal("DELETE FROM moe_expert_load WHERE microbatch = 1 AND expert = 3").find("has 3 experts"),
            std::string::npos);
  EXPECT_NE(refusal("UPDATE moe_routing SET assignments = 1125899906842625 WHERE microbatch = 1")
                .find("moe_routing.assignments = 1125899906842625"),
            std::string::npos);
  // 60 more groups (4 experts each), each its own layer and step: 61 layers over 62 micro-batches.
  EXPECT_NE(refusal("WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < 60) "
                    "INSERT INTO moe_routing SELECT 10 + i, 0, 10 + i, 0, 4, 0 FROM x; "
                    "WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < 60), "
                    "e(k) AS (VALUES (0), (1), (2), (3)) "
                    "INSERT INTO moe_expert_load SELECT 10 + i, 0, 10 + i, 0, k, 1 FROM x, e;")
                .find("moe_routing: 61 layers over 62 micro-batches in only 62 groups"),
            std::string::npos);
}

}  // namespace
}  // namespace moescope::storage
