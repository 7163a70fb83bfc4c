// Shards into one run: names, tracks and span ids remapped, each shard's clock correction applied,
// an unfinished or missing shard kept as what it recorded with the run marked failed, and shards that
// do not belong together refused with the output left as it was.
#include "storage/shard_merge.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "storage/schema.h"
#include "storage/shard_read.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

namespace fs = std::filesystem;

struct ShardSpec {
  int32_t index = 0, count = 2;
  std::string run_id = "run-1";
  std::vector<int32_t> ranks;
  ClockCorrection clock;
  bool finish = true;
  bool wrongOrderNames = false;  // intern names in another order than shard 0 does
};

// One shard: each rank has a host track with spans "forward" (100..200) and "send" (300..400) on the
// shard's own clock, shifted by 1000 per rank; rank 0 also has a GPU record linked to its "send" span and
// a counter sample, and the step metric.
fs::path writeShard(const fs::path& folder, const ShardSpec& spec) {
  fs::create_directories(folder);
  const fs::path file = folder / shardFileName(spec.index);
  RunInfo run;
  run.name = "merged";
  run.layout = "ppmoe";
  run.backend = "cpu";
  run.pp = 2;
  run.start_ns = 50 - spec.clock.offset_ns;  // every process starts at 50 on rank 0's clock
  auto w = RunWriter::create(file, run);
  w->setMeta(kShardIndexKey, std::to_string(spec.index));
  w->setMeta(kShardCountKey, std::to_string(spec.count));
  w->setMeta(kShardRunIdKey, spec.run_id);
  w->setMeta(kClockOffsetKey, std::to_string(spec.clock.offset_ns));
  w->setMeta(kClockDriftKey, std::to_string(spec.clock.drift_ppb));
  w->setMeta(kClockUncertaintyKey, std::to_string(spec.clock.uncertainty_ns));
  w->setMeta(kClockReferenceKey, std::to_string(spec.clock.reference_ns));
  w->setMeta(kClockSourceKey, spec.clock.source);
  w->setMeta("engine.config_file", "f.toml");
  const uint32_t first = w->intern(spec.wrongOrderNames ? "send" : "forward");
  const uint32_t second = w->intern(spec.wrongOrderNames ? "forward" : "send");
  const uint32_t forward = spec.wrongOrderNames ? second : first,
                 send = spec.wrongOrderNames ? first : second;
  for (int32_t r : spec.ranks) {
    w->addRank({r, r, 0, 0, kNone, "host" + std::to_string(spec.index)});
    const int32_t track = w->addTrack({0, r, TrackKind::HostThread, "rank host", 0, kNone, kNone});
    const int64_t base = 1000 * r;
    SpanRecord f{track, base + 100, base + 200, forward, Category::ComputeAttention};
    SpanRecord s{track, base + 300, base + 400, send, Category::CommPpSendrecv};
    s.bytes = 64;
    const int64_t firstId = w->addSpans(std::vector<SpanRecord>{f, s});
    if (r == spec.ranks.front()) {
      const int32_t stream = w->addTrack({0, r, TrackKind::GpuStream, "stream 7", 1, 0, 7});
      const uint32_t kernel = w->intern("kernel");
      GpuActivityRecord g{stream, base + 310, base + 390, kernel,      GpuActivityKind::Kernel,
                          0,      7,          1,          firstId + 1, 0};
      g.launch = {
          .grid_x = 64 + r, .block_x = 128, .registers = 32, .shared_dynamic = 1024};  // kept by the merge
      w->addGpuActivity(std::vector<GpuActivityRecord>{g});
      const int32_t counter = w->addTrack({0, r, TrackKind::Counter, "tokens/expert 0", 2, kNone, kNone});
      w->addCounters(std::vector<CounterSample>{{counter, base + 500, 42.0}});
    }
  }
  if (spec.index == 0) w->addStepMetric({0, 2.5, 2.4, 0.1, 128, 1.0, 128000, 100, 2400, int64_t{3} << 30});
  // Routing: the shard's own layer (its index), and layer 9's group, which every shard recorded (as
  // the tensor-parallel ranks of one replica all do).
  w->addMoeRouting(std::vector<MoeRouting>{{0, 0, spec.index, 0, 8, 1, {4, 3}}, {0, 0, 9, 0, 8, 0, {5, 3}}});
  if (spec.finish) {
    w->setStatus(RunStatus::Complete, "", 5000);
  }
  w->commit();
  return file;
}

// The spans of a loaded trace as (rank, name, start, end), by rank then start.
struct Flat {
  int32_t rank;
  std::string name;
  int64_t start, end;
  bool operator==(const Flat&) const = default;
};
std::vector<Flat> hostSpans(const Trace& t) {
  std::vector<Flat> out;
  for (size_t k = 0; k < t.tracks.size(); ++k) {
    if (t.tracks[k].kind != TrackKind::HostThread) continue;
    const SpanColumns& c = t.spans[k];
    for (size_t i = 0; i < c.size(); ++i) {
      const SpanView v = c.at(i, static_cast<int32_t>(k));
      out.push_back({t.tracks[k].rank, std::string(t.name(v.name)), v.start, v.end});
    }
  }
  std::sort(out.begin(), out.end(), [](const Flat& a, const Flat& b) {
    return std::tie(a.rank, a.start) < std::tie(b.rank, b.start);
  });
  return out;
}

std::string metaValue(const Trace& t, const std::string& key) {
  for (const auto& [k, v] : t.meta)
    if (k == key) return v;
  return "<none>";
}

TEST(ShardMerge, RemapsIdsAndAppliesEachShardsClock) {
  testing::TempDir dir("merge");
  const fs::path shards = dir.file("run.moescope.shards");
  writeShard(shards, {.index = 0, .ranks = {0}});
  ClockCorrection skew{.offset_ns = -700, .drift_ppb = 0, .uncertainty_ns = 25, .source = "mpi ping-pong"};
  writeShard(shards, {.index = 1, .ranks = {1}, .clock = skew, .wrongOrderNames = true});
  const fs::path out = dir.file("run.moescope");
  std::vector<int32_t> progress;
  const MergeReport report = mergeShards(
      listShards(shards), out, [&](int32_t done, int32_t total) { progress.push_back(done * 10 + total); });
  EXPECT_EQ(progress, (std::vector<int32_t>{12, 22}));
  EXPECT_EQ(report.status, RunStatus::Complete);
  EXPECT_EQ(report.spans, 4);
  EXPECT_EQ(report.gpu_records, 2);  // one per shard
  EXPECT_EQ(report.counters, 2);
  EXPECT_TRUE(report.missing.empty());

  const Trace t = RunReader::open(out)->load();
  EXPECT_EQ(t.run.status, RunStatus::Complete);
  ASSERT_EQ(t.ranks.size(), 2u);
  EXPECT_EQ(t.ranks[1].host, "host1");
  // Rank 1's spans at 1100.. on its own clock, 700 ns ahead of rank 0's: 400.. on the run's clock.
  EXPECT_EQ(
      hostSpans(t),
      (std::vector<Flat>{
          {0, "forward", 100, 200}, {0, "send", 300, 400}, {1, "forward", 400, 500}, {1, "send", 600, 700}}));
  // Each shard's GPU record still points at its own "send" span, moved like it.
  ASSERT_EQ(t.gpu.size(), 2u);
  for (const GpuActivityRecord& g : t.gpu) {
    const LinkedSpan* l = t.linkedSpan(g.span);
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(t.name(l->span.name), "send");
    EXPECT_EQ(t.tracks[static_cast<size_t>(l->span.track)].rank, t.tracks[static_cast<size_t>(g.track)].rank);
    EXPECT_EQ(g.start, l->span.start + 10);
    EXPECT_EQ(g.launch.grid_x, 64 + t.tracks[static_cast<size_t>(g.track)].rank);
    EXPECT_EQ(g.launch.shared_dynamic, 1024);
  }
  ASSERT_EQ(t.counters.size(), 2u);
  EXPECT_EQ(t.counters[1].time, 1500 - 700);
  ASSERT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.steps[0].end_ns, 2400);
  EXPECT_EQ(t.steps[0].peak_memory_bytes, int64_t{3} << 30);  // the step's device memory peak, copied
  EXPECT_EQ(metaValue(t, "rank.1.clock.uncertainty_ns"), "25");
  EXPECT_EQ(metaValue(t, "rank.1.clock.offset_ns"), "-700");
  EXPECT_EQ(metaValue(t, "rank.1.process"), "1");
  EXPECT_EQ(metaValue(t, "rank.0.clock.source"), "host");
  EXPECT_EQ(metaValue(t, "run.processes"), "2");
  EXPECT_EQ(metaValue(t, "engine.config_file"), "f.toml");
  EXPECT_EQ(metaValue(t, "shard.index"), "<none>");
  // Each shard's routing group, and the group both recorded once.
  EXPECT_EQ(t.routing,
            (std::vector<MoeRouting>{
                {0, 0, 0, 0, 8, 1, {4, 3}}, {0, 0, 1, 0, 8, 1, {4, 3}}, {0, 0, 9, 0, 8, 0, {5, 3}}}));
}

// Reading the shards together gives what loading their merge gives.
// The span table's indexes of a file, by name.
std::vector<std::string> spanIndexes(const fs::path& file) {
  sqlite3* db = nullptr;
  std::vector<std::string> names;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'span'", -1,
                       &st, nullptr);
    while (st && sqlite3_step(st) == SQLITE_ROW)
      names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return names;
}

// A shard is written for ingest: its writer finishes it without the (track, start) span index, which
// the merge builds once in the run's one file; the shards still read together whole.
TEST(ShardMerge, AShardLeavesTheSpanIndexToTheMerge) {
  testing::TempDir dir("merge");
  const fs::path shards = dir.file("run.moescope.shards");
  const fs::path shard = writeShard(shards, {.index = 0, .count = 2, .ranks = {0}});
  writeShard(shards, {.index = 1, .count = 2, .ranks = {1}});
  EXPECT_EQ(spanIndexes(shard), std::vector<std::string>{});
  EXPECT_EQ(loadShards(listShards(shards)).spanCount(), 4u);
  const fs::path out = dir.file("run.moescope");
  mergeShards(listShards(shards), out);
  EXPECT_EQ(spanIndexes(out), std::vector<std::string>{std::string(schema::finishedIndex())});
}

TEST(ShardMerge, ReadingTheShardsTogetherEqualsLoadingTheirMerge) {
  testing::TempDir dir("joint");
  const fs::path shards = dir.file("shards");
  writeShard(shards, {.index = 0, .count = 3, .ranks = {0}});
  writeShard(shards, {.index = 1,
                      .count = 3,
                      .ranks = {1, 2},
                      .clock = {.offset_ns = -700,
                                .drift_ppb = 1e6,
                                .uncertainty_ns = 25,
                                .reference_ns = 100,
                                .source = "mpi ping-pong"},
                      .wrongOrderNames = true});
  writeShard(shards, {.index = 2, .count = 3, .ranks = {3}, .finish = false});
  mergeShards(listShards(shards), dir.file("run.moescope"));
  const Trace merged = RunReader::open(dir.file("run.moescope"))->load();
  const Trace joint = loadShards(listShards(shards));
  EXPECT_EQ(joint.run, merged.run);
  EXPECT_EQ(joint.ranks, merged.ranks);
  EXPECT_EQ(hostSpans(joint), hostSpans(merged));
  EXPECT_EQ(joint.gpu, merged.gpu);
  EXPECT_EQ(joint.counters, merged.counters);
  EXPECT_EQ(joint.steps, merged.steps);
  EXPECT_EQ(joint.meta, merged.meta);
  EXPECT_EQ(joint.routing, merged.routing);
  EXPECT_EQ(joint.routing.size(), 4u);  // layers 0, 1, 2 and the shared 9
  ASSERT_EQ(joint.gpu.size(), 3u);
  for (const GpuActivityRecord& g : joint.gpu) {
    ASSERT_NE(joint.linkedSpan(g.span), nullptr);
    EXPECT_EQ(joint.name(joint.linkedSpan(g.span)->span.name), "send");
  }
}

TEST(ShardMerge, DriftIsCorrectedLinearlyFromTheReference) {
  const ClockCorrection c{.offset_ns = 1000, .drift_ppb = 2000, .reference_ns = 1'000'000'000};
  EXPECT_EQ(c.apply(1'000'000'000), 1'000'001'000);
  EXPECT_EQ(c.apply(3'000'000'000), 3'000'005'000);  // 2 s later: 4000 ns of drift
  testing::TempDir dir("drift");
  const fs::path shards = dir.file("shards");
  writeShard(shards, {.index = 0,
                      .count = 1,
                      .ranks = {0},
                      .clock = {.offset_ns = 10, .drift_ppb = 1e6, .reference_ns = 100}});
  mergeShards(listShards(shards), dir.file("run.moescope"));
  const Trace t = RunReader::open(dir.file("run.moescope"))->load();
  // 1 ms/s: the span at 300 ends 400 + 10 + 0.3 ns later (rounded).
  EXPECT_EQ(hostSpans(t)[1], (Flat{0, "send", 310, 410}));
}

TEST(ShardMerge, AnUnfinishedShardKeepsItsSpansAndTheRunIsFailed) {
  testing::TempDir dir("killed");
  const fs::path shards = dir.file("shards");
  writeShard(shards, {.index = 0, .count = 3, .ranks = {0, 1}});
  writeShard(shards, {.index = 1, .count = 3, .ranks = {2}, .finish = false});
  // Shard 2 never written: its process died before it opened the file.
  const MergeReport report = mergeShards(listShards(shards), dir.file("run.moescope"));
  EXPECT_EQ(report.status, RunStatus::Failed);
  EXPECT_EQ(report.stopped, (std::vector<int32_t>{1}));
  EXPECT_EQ(report.missing, (std::vector<int32_t>{2}));
  EXPECT_NE(report.error.find("process 1 (ranks 2) stopped without finishing"), std::string::npos)
      << report.error;
  EXPECT_NE(report.error.find("process 2: no shard"), std::string::npos) << report.error;
  const Trace t = RunReader::open(dir.file("run.moescope"))->load();
  EXPECT_EQ(t.run.status, RunStatus::Failed);
  EXPECT_EQ(t.run.error, report.error);
  EXPECT_EQ(hostSpans(t).size(), 6u);
  EXPECT_EQ(t.run.end_ns, 5000);  // shard 0's end; the later spans of rank 2 end at 2400
}

// Processes started without a launcher's world size write shard.count 0: the run has as many as were
// found, none of them missing; a shard that says 0 beside one that says 2 is still refused.
TEST(ShardMerge, ACountOfZeroInEveryShardMeansTheShardsFound) {
  testing::TempDir dir("unknown-count");
  const fs::path shards = dir.file("shards");
  writeShard(shards, {.index = 0, .count = 0, .ranks = {0}});
  writeShard(shards, {.index = 1, .count = 0, .ranks = {1}});
  const MergeReport report = mergeShards(listShards(shards), dir.file("run.moescope"));
  EXPECT_EQ(report.processes, 2);
  EXPECT_TRUE(report.missing.empty());
  EXPECT_EQ(report.status, RunStatus::Complete) << report.error;
  const Trace t = RunReader::open(dir.file("run.moescope"))->load();
  EXPECT_EQ(metaValue(t, std::string(kRunProcessesKey)), "2");
  EXPECT_EQ(hostSpans(t).size(), 4u);
  const fs::path two = writeShard(dir.file("two"), {.index = 1, .count = 2, .ranks = {1}});
  EXPECT_THROW(mergeShards({shards / shardFileName(0), two}, dir.file("mixed.moescope")), StorageError);
  const fs::path negative = writeShard(dir.file("negative"), {.index = 0, .count = -1, .ranks = {0}});
  EXPECT_THROW(readShardInfo(negative), StorageError);
}

TEST(ShardMerge, ShardsThatDoNotBelongTogetherAreRefusedAndTheOutputKept) {
  testing::TempDir dir("refused");
  const fs::path out = dir.file("run.moescope");
  { std::ofstream(out) << "keep me"; }
  auto refused = [&](const std::vector<fs::path>& files, const std::string& needle) {
    try {
      mergeShards(files, out);
      ADD_FAILURE() << "merged: " << needle;
    } catch (const StorageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    std::ifstream in(out);
    std::string text;
    std::getline(in, text);
    EXPECT_EQ(text, "keep me");
  };
  const fs::path a = writeShard(dir.file("a"), {.index = 0, .ranks = {0}});
  const fs::path other = writeShard(dir.file("b"), {.index = 1, .run_id = "run-2", .ranks = {1}});
  refused({a, other}, "belongs to another run");
  const fs::path again = writeShard(dir.file("c"), {.index = 0, .ranks = {1}});
  refused({a, again}, "repeats shard index 0");
  const fs::path three = writeShard(dir.file("d"), {.index = 1, .count = 3, .ranks = {1}});
  refused({a, three}, "says the run has 3 processes");
  const fs::path same = writeShard(dir.file("e"), {.index = 1, .ranks = {0}});
  refused({a, same}, "holds rank 0");
  // A plain run file is not a shard.
  RunWriter::create(dir.file("plain.moescope"), RunInfo{});
  refused({dir.file("plain.moescope")}, "not a shard of a multi-process run (no shard.count)");
  { std::ofstream(dir.file("junk.moescope")) << "not sqlite at all"; }
  refused({dir.file("junk.moescope")}, "not a SQLite database");
  EXPECT_THROW(listShards(dir.file("nowhere")), StorageError);
  EXPECT_THROW(listShards(dir.file("a").parent_path() / "plain.moescope"), StorageError);
  fs::create_directories(dir.file("empty"));
  EXPECT_THROW(listShards(dir.file("empty")), StorageError);
  // Nothing of a refused merge is left beside the output.
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".import-"), std::string::npos) << e.path();
}

}  // namespace
}  // namespace moescope::storage
