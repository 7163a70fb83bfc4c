#include "tracer/tracer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"

namespace moescope::tracer {
namespace {

using storage::RunReader;
using storage::RunStatus;

storage::RunInfo runInfo() {
  storage::RunInfo run;
  run.name = "tracer test";
  run.pp = 4;
  return run;
}

TEST(Tracer, SpansFromSeveralThreadsAllArrive) {
  testing::TempRunFile file;
  constexpr int kThreads = 4;
  constexpr int kSpansPerThread = 5000;  // several chunks per recorder
  {
    auto tracer = Tracer::open(file.path(), runInfo(), {.flushPeriod = std::chrono::milliseconds(5)});
    std::vector<std::thread> threads;
    for (int r = 0; r < kThreads; ++r) {
      tracer->addRank({.rank = r, .stage = r});
      threads.emplace_back([&tracer, r] {
        TrackRecorder* rec = tracer->hostTrack(r, "rank " + std::to_string(r) + " host");
        const std::string_view dynamicName = tracer->intern("layer " + std::to_string(r));
        for (int i = 0; i < kSpansPerThread; ++i) {
          ScopedSpan s(rec, i % 2 ? "attention" : dynamicName,
                       {.category = Category::ComputeAttention,
                        .phase = Phase::Forward,
                        .step = i / 100,
                        .microbatch = i % 8,
                        .layer = r});
          if (i % 2 == 0) s.setBytes(i);
        }
      });
    }
    for (auto& t : threads) t.join();
    tracer->stepMetric({.step = 0, .loss = 2.5, .tokens = 1024});
    const int32_t counterTrack = tracer->counterTrack(0, "tokens/expert");
    tracer->counter(counterTrack, 5, 7.0);
    tracer->setMeta("threads", "4");
    tracer->finish(RunStatus::Complete, "");
    EXPECT_EQ(tracer->spansWritten(), kThreads * kSpansPerThread);
  }
  const storage::Trace t = RunReader::open(file.path())->load();
  EXPECT_EQ(t.run.status, RunStatus::Complete);
  EXPECT_GT(t.run.end_ns, t.run.start_ns);
  ASSERT_EQ(t.ranks.size(), static_cast<size_t>(kThreads));
  ASSERT_EQ(t.tracks.size(), static_cast<size_t>(kThreads + 1));
  EXPECT_EQ(t.spanCount(), static_cast<size_t>(kThreads * kSpansPerThread));
  for (size_t track = 0; track < t.spans.size(); ++track) {
    const auto& c = t.spans[track];
    if (c.size() == 0) continue;  // the counter track
    ASSERT_EQ(c.size(), static_cast<size_t>(kSpansPerThread));
    const int32_t rank = t.tracks[track].rank;
    const std::string own = "layer " + std::to_string(rank);
    size_t named = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      const auto v = c.at(i, static_cast<int32_t>(track));
      EXPECT_EQ(v.layer, rank);
      EXPECT_LE(v.start, v.end);
      const auto name = t.name(v.name);
      EXPECT_TRUE(name == "attention" || name == own) << name;
      named += name == own;
    }
    EXPECT_EQ(named, static_cast<size_t>(kSpansPerThread / 2));
  }
  ASSERT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.steps[0].loss, 2.5);
  ASSERT_EQ(t.counters.size(), 1u);
  EXPECT_EQ(t.counters[0].value, 7.0);
  EXPECT_EQ(t.meta.size(), 1u);
}

TEST(Tracer, StatusAndErrorAreSetAtFinish) {
  testing::TempRunFile file;
  auto tracer = Tracer::open(file.path(), runInfo());
  EXPECT_EQ(RunReader::open(file.path())->run().status, RunStatus::Running);
  tracer->finish(RunStatus::Failed, "NCCL timeout");
  tracer->finish(RunStatus::Complete, "");  // later calls do nothing
  const auto run = RunReader::open(file.path())->run();
  EXPECT_EQ(run.status, RunStatus::Failed);
  EXPECT_EQ(run.error, "NCCL timeout");
}

TEST(Tracer, ATracerDestroyedWithoutFinishMarksTheRunFailed) {
  testing::TempRunFile file;
  Tracer::open(file.path(), runInfo()).reset();
  EXPECT_EQ(RunReader::open(file.path())->run().status, RunStatus::Failed);
}

TEST(Tracer, AGrowingFileShowsSpansBeforeFinish) {
  testing::TempRunFile file;
  auto tracer = Tracer::open(file.path(), runInfo(), {.flushPeriod = std::chrono::milliseconds(2)});
  TrackRecorder* rec = tracer->hostTrack(0, "rank 0 host");
  for (int i = 0; i < 10; ++i) ScopedSpan s(rec, "optimizer", {.category = Category::Optimizer});
  rec->flush();
  auto reader = RunReader::open(file.path());
  storage::Trace t = reader->load();
  for (int attempt = 0; attempt < 500 && t.spanCount() < 10; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    reader->refresh(t);
  }
  EXPECT_EQ(t.spanCount(), 10u);
  EXPECT_EQ(t.run.status, RunStatus::Running);
  tracer->finish(RunStatus::Complete, "");
}

TEST(Tracer, SpansBeyondTheBufferLimitAreDroppedAndCounted) {
  testing::TempRunFile file;
  // One chunk per recorder and a flush thread that does not get to run before finish: the first
  // 1024 spans fit, the rest are dropped.
  auto tracer =
      Tracer::open(file.path(), runInfo(), {.flushPeriod = std::chrono::hours(1), .maxBufferedChunks = 1});
  TrackRecorder* rec = tracer->hostTrack(0, "rank 0 host");
  for (int i = 0; i < 1500; ++i) ScopedSpan s(rec, "expert", {.category = Category::ComputeExpert});
  EXPECT_EQ(tracer->droppedSpans(), 1500 - 1024);
  tracer->finish(RunStatus::Complete, "");
  const storage::Trace t = RunReader::open(file.path())->load();
  EXPECT_EQ(t.spanCount(), 1024u);
  EXPECT_EQ(t.meta, (std::vector<std::pair<std::string, std::string>>{{"tracer.dropped_spans", "476"}}));
}

TEST(Tracer, ANullRecorderRecordsNothing) {
  ScopedSpan s(nullptr, "attention", {.category = Category::ComputeAttention});
  s.setBytes(5);
  SUCCEED();
}

// Hooks that log what they see, as the GPU tracer's push and pop would.
struct HookLog {
  std::vector<std::pair<uint64_t, std::string>> opened;
  int closed = 0;
  int depth = 0, maxDepth = 0;
};
HookLog* g_log = nullptr;
void logOpen(uint64_t id, std::string_view name, Category) {
  g_log->opened.emplace_back(id, std::string(name));
  g_log->maxDepth = std::max(g_log->maxDepth, ++g_log->depth);
}
void logClose() {
  ++g_log->closed;
  --g_log->depth;
}
constexpr SpanHooks kLogHooks{logOpen, logClose};

struct InstalledHooks {
  explicit InstalledHooks(HookLog& log) {
    g_log = &log;
    setSpanHooks(&kLogHooks);
  }
  ~InstalledHooks() {
    setSpanHooks(nullptr);
    g_log = nullptr;
  }
};

TEST(Tracer, SpanIdsAreUniquePerRunAndNameTheirTrack) {
  testing::TempRunFile file;
  auto tracer = Tracer::open(file.path(), runInfo());
  TrackRecorder* a = tracer->hostTrack(0, "rank 0 host");
  TrackRecorder* b = tracer->hostTrack(1, "rank 1 host");
  std::set<uint64_t> ids;
  for (int i = 0; i < 1000; ++i) {
    ScopedSpan outer(a, "outer", {.category = Category::ComputeExpert});
    ScopedSpan inner(b, "inner", {.category = Category::ComputeExpert});
    EXPECT_NE(outer.id(), 0u);
    EXPECT_EQ(spanTrackOf(outer.id()), a->track());
    EXPECT_EQ(spanTrackOf(inner.id()), b->track());
    ids.insert(outer.id());
    ids.insert(inner.id());
    ids.insert(a->open("after the fact", Category::Wait));
    a->close();
  }
  EXPECT_EQ(ids.size(), 3000u);
  EXPECT_EQ(ScopedSpan(nullptr, "off", {}).id(), 0u);
  tracer->finish(RunStatus::Complete, "");
}

TEST(Tracer, HooksSeeEverySpanOpenAndCloseNested) {
  testing::TempRunFile file;
  auto tracer = Tracer::open(file.path(), runInfo());
  TrackRecorder* rec = tracer->hostTrack(0, "rank 0 host");
  HookLog log;
  uint64_t outerId = 0, innerId = 0;
  {
    InstalledHooks installed(log);
    ScopedSpan outer(rec, "layer", {.category = Category::ComputeFfn});
    outerId = outer.id();
    {
      ScopedSpan inner(rec, "expert", {.category = Category::ComputeExpert});
      innerId = inner.id();
    }
    const uint64_t id = rec->open("tp_allreduce", Category::CommTpAllreduce);
    rec->close();
    rec->record("tp_allreduce", {.category = Category::CommTpAllreduce}, 5, 6, id);
    ScopedSpan off(nullptr, "off", {});  // tracing off: no hooks
  }
  ScopedSpan after(rec, "after", {});  // hooks removed
  ASSERT_EQ(log.opened.size(), 3u);
  EXPECT_EQ(log.opened[0], std::make_pair(outerId, std::string("layer")));
  EXPECT_EQ(log.opened[1], std::make_pair(innerId, std::string("expert")));
  EXPECT_EQ(log.opened[2].second, "tp_allreduce");
  EXPECT_EQ(log.closed, 3);
  EXPECT_EQ(log.maxDepth, 2);
  EXPECT_EQ(log.depth, 0);
}

TEST(Tracer, GpuRecordsGoOnStreamTracksOfTheDevicesRankTiedToTheirSpans) {
  testing::TempRunFile file;
  uint64_t expertId = 0, allreduceId = 0;
  {
    auto tracer = Tracer::open(file.path(), runInfo(), {.flushPeriod = std::chrono::milliseconds(2)});
    tracer->addRank({.rank = 0, .stage = 0, .device = 1});
    tracer->addRank({.rank = 1, .stage = 0, .device = 0});
    tracer->linkGpuActivity();
    TrackRecorder* rec = tracer->hostTrack(0, "rank 0 host");
    std::vector<GpuActivity> early;
    {
      ScopedSpan expert(rec, "expert", {.category = Category::ComputeExpert, .step = 0});
      expertId = expert.id();
      // A record that arrives while its span is still open waits for the span.
      early.push_back({storage::GpuActivityKind::Kernel, 100, 200, "gemm", 1, 7, 1, expertId, 0});
      tracer->gpuActivity(early);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    rec->flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the span is written first ...
    allreduceId = rec->open("tp_allreduce", Category::CommTpAllreduce);
    rec->close();
    rec->record("tp_allreduce", {.category = Category::CommTpAllreduce, .step = 0}, 300, 400, allreduceId);
    // ... these records arrive after their spans were written, and one launched outside any span.
    tracer->gpuActivity(
        {{storage::GpuActivityKind::Kernel, 210, 250, "gemm", 1, 7, 2, expertId, 0},
         {storage::GpuActivityKind::Kernel, 310, 390, "ncclDevKernel_AllReduce", 1, 8, 3, allreduceId, 0},
         {storage::GpuActivityKind::Memcpy, 500, 600, "memcpy HtoD", 0, 3, 4, 0, 4096},
         {storage::GpuActivityKind::Kernel, 700, 800, "lost", 0, 3, 5, 12345, 0}});
    tracer->finish(RunStatus::Complete, "");
    EXPECT_EQ(tracer->gpuRecordsWritten(), 5);
    EXPECT_EQ(tracer->gpuRecordsUnlinked(), 1);
  }
  const storage::Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.tracks.size(), 4u);  // the host track and three streams
  std::map<std::pair<int32_t, int64_t>, storage::TrackInfo> streams;
  for (const auto& track : t.tracks)
    if (track.kind == storage::TrackKind::GpuStream) streams[{track.device, track.stream}] = track;
  ASSERT_EQ(streams.size(), 3u);
  EXPECT_EQ(streams.at({1, 7}).rank, 0);  // GPU 1 belongs to rank 0
  EXPECT_EQ(streams.at({0, 3}).rank, 1);
  ASSERT_EQ(t.gpu.size(), 5u);
  std::map<std::string, std::vector<int64_t>> spanOf;
  for (const auto& g : t.gpu) spanOf[std::string(t.name(g.name))].push_back(g.span);
  ASSERT_EQ(spanOf["gemm"].size(), 2u);
  const storage::LinkedSpan* expert = t.linkedSpan(spanOf["gemm"][0]);
  ASSERT_NE(expert, nullptr);
  EXPECT_EQ(t.name(expert->span.name), "expert");
  EXPECT_EQ(spanOf["gemm"][1], spanOf["gemm"][0]);
  const storage::LinkedSpan* allreduce = t.linkedSpan(spanOf["ncclDevKernel_AllReduce"].at(0));
  ASSERT_NE(allreduce, nullptr);
  EXPECT_EQ(allreduce->span.category, Category::CommTpAllreduce);
  EXPECT_EQ(allreduce->span.start, 300);
  EXPECT_EQ(spanOf["memcpy HtoD"], std::vector<int64_t>{storage::kNone});
  EXPECT_EQ(spanOf["lost"], std::vector<int64_t>{storage::kNone});
  auto meta = [&](const std::string& key) {
    for (const auto& [k, v] : t.meta)
      if (k == key) return v;
    return std::string();
  };
  EXPECT_EQ(meta("tracer.gpu_records"), "5");
  EXPECT_EQ(meta("tracer.gpu_records_unlinked"), "1");
}

}  // namespace
}  // namespace moescope::tracer
