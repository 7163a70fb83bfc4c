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
