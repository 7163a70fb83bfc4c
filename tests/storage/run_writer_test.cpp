// The schema round-trip: everything a writer puts in a run file comes back from the reader unchanged.
#include "storage/run_writer.h"

#include <gtest/gtest.h>

#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

RunInfo sampleRun() {
  RunInfo run;
  run.name = "round trip";
  run.config = "[model]\nlayers = 4\n";
  run.layout = "ppmoe";
  run.backend = "cpu";
  run.devices = "cpu (2 threads)";
  run.pp = 2;
  run.tp = 2;
  run.dp = 1;
  run.microbatches = 4;
  run.schedule = Schedule::Interleaved;
  run.virtual_stages = 2;
  run.tokens_per_step = 8192;
  run.start_ns = 100;
  return run;
}

TEST(RunWriter, EverythingWrittenIsReadBack) {
  testing::TempRunFile file;
  RunInfo run = sampleRun();
  std::vector<SpanRecord> spans;
  {
    auto w = RunWriter::create(file.path(), run);
    w->addRank({0, 0, 0, 0, kNone, "hostA"});
    w->addRank({1, 1, 0, 0, 3, "hostB"});
    EXPECT_EQ(w->addTrack({99, 0, TrackKind::HostThread, "rank 0 host", 0, kNone, kNone}), 0);
    EXPECT_EQ(w->addTrack({99, 1, TrackKind::GpuStream, "stream 7", 1, 3, 7}), 1);
    EXPECT_EQ(w->addTrack({99, 1, TrackKind::Counter, "tokens/expert", 2, kNone, kNone}), 2);
    const uint32_t attention = w->intern("attention");
    const uint32_t send = w->intern("send");
    EXPECT_EQ(w->intern("attention"), attention);
    EXPECT_NE(send, attention);
    // 130 spans: two full multi-row inserts and a remainder; one longer than 2^32 ns, one with bytes.
    for (int i = 0; i < 130; ++i) {
      SpanRecord s{0,
                   1000 + i * 10,
                   1005 + i * 10,
                   attention,
                   Category::ComputeAttention,
                   Phase::Forward,
                   i / 10,
                   i % 4,
                   i % 3,
                   i % 2 ? 5 : kNone,
                   0,
                   i % 5 == 0 ? kNone : i % 2};
      spans.push_back(s);
    }
    spans.push_back({1, 50, 50 + (int64_t{5} << 32), send, Category::CommPpSendrecv, Phase::BackwardWeight, 2,
                     kNone, kNone, kNone, 4096});
    EXPECT_EQ(w->addSpans(spans), 0);
    const int64_t next = w->addSpans(std::span(spans).subspan(0, 1));
    EXPECT_EQ(next, 131);
    spans.push_back(spans[0]);
    w->addGpuActivity(
        std::vector<GpuActivityRecord>{{1, 60, 70, send, GpuActivityKind::Memcpy, 3, 7, 11, 130, 4096}});
    w->addCounters(std::vector<CounterSample>{{2, 10, 1.5}, {2, 20, 2.5}});
    w->addStepMetric({0, 3.5, 3.4, 0.1, 8192, 12.5, 655360.0, 100, 12'500'100});
    w->setMeta("cupti.dropped_records", "0");
    run.name = "renamed";
    w->updateRun(run);
    w->setStatus(RunStatus::Failed, "out of memory", 999);
  }
  auto reader = RunReader::open(file.path());
  const Trace t = reader->load();
  RunInfo expected = run;
  expected.status = RunStatus::Failed;
  expected.error = "out of memory";
  expected.end_ns = 999;
  EXPECT_EQ(t.run, expected);
  EXPECT_EQ(reader->run(), expected);
  ASSERT_EQ(t.ranks.size(), 2u);
  EXPECT_EQ(t.ranks[1], (RankInfo{1, 1, 0, 0, 3, "hostB"}));
  ASSERT_EQ(t.tracks.size(), 3u);
  EXPECT_EQ(t.tracks[1], (TrackInfo{1, 1, TrackKind::GpuStream, "stream 7", 1, 3, 7}));
  EXPECT_EQ(t.strings, (std::vector<std::string>{"attention", "send"}));
  // spanCount counts host tracks' spans; track 1 is a GPU stream's, where the memcpy that span 130
  // launched is a span too (Trace::spans).
  ASSERT_EQ(t.spanCount(), spans.size() - 1);
  ASSERT_EQ(t.spans[1].size(), 2u);
  // Track 0 holds spans 0..129 plus the repeated span 0, sorted by (start, end).
  ASSERT_EQ(t.spans[0].size(), 131u);
  const auto asView = [](const SpanRecord& s) {
    return SpanView{s.track, s.start,      s.end,   s.name,   s.category, s.phase,
                    s.step,  s.microbatch, s.layer, s.expert, s.bytes,    s.chunk};
  };
  EXPECT_EQ(t.spans[0].at(0, 0), asView(spans[0]));
  EXPECT_EQ(t.spans[0].at(1, 0), asView(spans[0]));
  EXPECT_EQ(t.spans[0].at(130, 0), asView(spans[129]));
  EXPECT_EQ(t.spans[1].at(0, 1), asView(spans[130]));
  ASSERT_EQ(t.gpu.size(), 1u);
  EXPECT_EQ(t.gpu[0], (GpuActivityRecord{1, 60, 70, 1, GpuActivityKind::Memcpy, 3, 7, 11, 130, 4096}));
  EXPECT_EQ(t.counters, (std::vector<CounterSample>{{2, 10, 1.5}, {2, 20, 2.5}}));
  EXPECT_EQ(t.steps, (std::vector<StepMetric>{{0, 3.5, 3.4, 0.1, 8192, 12.5, 655360.0, 100, 12'500'100}}));
  EXPECT_EQ(t.meta, (std::vector<std::pair<std::string, std::string>>{{"cupti.dropped_records", "0"}}));
}

// Steps are kept in 2 bytes in memory (storage/step_column.h); steps beyond that come back unchanged
// through the file, the reader's trace and a span's view.
TEST(RunWriter, StepsBeyond32767SurviveTheFileAndTheTrace) {
  testing::TempRunFile file;
  const std::vector<int32_t> early = {0, 32767, 32768, kNone, 65536, 1'000'000};
  const std::vector<int32_t> late = {40000, 40001, kNone, 72767, 3};  // a run recorded from step 40,000
  {
    auto w = RunWriter::create(file.path(), sampleRun());
    w->addRank({0, 0, 0, 0, kNone, "hostA"});
    EXPECT_EQ(w->addTrack({99, 0, TrackKind::HostThread, "early", 0, kNone, kNone}), 0);
    EXPECT_EQ(w->addTrack({99, 0, TrackKind::HostThread, "late", 1, kNone, kNone}), 1);
    const uint32_t name = w->intern("layer");
    std::vector<SpanRecord> spans;
    for (size_t i = 0; i < early.size(); ++i) {
      const auto t = static_cast<int64_t>(i) * 10;
      spans.push_back({0, t, t + 5, name, Category::ComputeFfn, Phase::Forward, early[i]});
    }
    for (size_t i = 0; i < late.size(); ++i) {
      const auto t = static_cast<int64_t>(i) * 10;
      spans.push_back({1, t, t + 5, name, Category::ComputeFfn, Phase::Forward, late[i]});
    }
    EXPECT_EQ(w->addSpans(spans), 0);
  }
  const Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.spans.size(), 2u);
  ASSERT_EQ(t.spans[0].size(), early.size());
  ASSERT_EQ(t.spans[1].size(), late.size());
  for (size_t i = 0; i < early.size(); ++i) {
    EXPECT_EQ(t.spans[0].stepAt(i), early[i]) << i;
    EXPECT_EQ(t.spans[0].at(i, 0).step, early[i]) << i;
  }
  for (size_t i = 0; i < late.size(); ++i) EXPECT_EQ(t.spans[1].at(i, 1).step, late[i]) << i;
  EXPECT_EQ(t.spans[1].step.index.size(), 1u);  // only step 3, far below the track's first step
}

TEST(RunWriter, ReplacesAnExistingFile) {
  testing::TempRunFile file;
  {
    auto w = RunWriter::create(file.path(), sampleRun());
    w->addTrack({});
    w->addSpans(std::vector<SpanRecord>(3));
  }
  { auto w = RunWriter::create(file.path(), sampleRun()); }
  EXPECT_EQ(RunReader::open(file.path())->load().spanCount(), 0u);
}

TEST(RunWriter, RefusesASpanOnAnUnknownTrack) {
  testing::TempRunFile file;
  auto w = RunWriter::create(file.path(), sampleRun());
  SpanRecord s;
  s.track = 4;
  EXPECT_THROW(w->addSpans(std::span(&s, 1)), StorageError);
}

TEST(RunWriter, CannotCreateInAMissingFolder) {
  testing::TempRunFile file;
  try {
    RunWriter::create(file.sibling("no/such/folder/run.moescope"), sampleRun());
    FAIL() << "expected a StorageError";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("run.moescope"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moescope::storage
