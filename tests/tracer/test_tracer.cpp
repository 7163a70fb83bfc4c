#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "storage/run_reader.h"
#include "tests/storage/temp_run_file.h"
#include "tracer/tracer.h"

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

}  // namespace
}  // namespace moescope::tracer
