#include "storage/run_reader.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "storage/run_writer.h"
#include "storage/schema.h"
#include "storage/synthetic.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

// Expects opening (and loading) path to throw a StorageError whose one-line message names the file
// and contains `problem`.
void expectRefused(const std::filesystem::path& path, const std::string& problem) {
  try {
    RunReader::open(path)->load();
    FAIL() << "expected " << path << " to be refused with \"" << problem << "\"";
  } catch (const StorageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

void writeBytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void execSql(const std::filesystem::path& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

// A small complete run, its WAL folded into the file.
void writeSmallRun(const std::filesystem::path& path, int64_t spans = 2000) {
  SyntheticOptions o;
  o.stages = 2;
  o.tp = 1;
  o.spans = spans;
  writeSyntheticRun(path, o);
}

TEST(RunReader, RefusesAMissingFile) {
  testing::TempRunFile file;
  expectRefused(file.path(), "no such file");
}

TEST(RunReader, RefusesAnEmptyFile) {
  testing::TempRunFile file;
  writeBytes(file.path(), "");
  expectRefused(file.path(), "empty file");
}

TEST(RunReader, RefusesAFileThatIsNotSQLite) {
  testing::TempRunFile file;
  writeBytes(file.path(), "{\"traceEvents\": []}\n" + std::string(5000, ' '));
  expectRefused(file.path(), "not a SQLite database");
}

TEST(RunReader, RefusesAFileFromANewerVersion) {
  testing::TempRunFile file;
  writeSmallRun(file.path());
  execSql(file.path(), ("PRAGMA user_version = " + std::to_string(schema::kVersion + 1)).c_str());
  expectRefused(file.path(), "newer moescope (file version " + std::to_string(schema::kVersion + 1));
}

TEST(RunReader, RefusesASQLiteFileThatIsNotARunFile) {
  testing::TempRunFile file;
  execSql(file.path(), "CREATE TABLE photos (id INTEGER)");
  expectRefused(file.path(), "not a moescope run file");
}

TEST(RunReader, RefusesARunFileWithMissingTables) {
  testing::TempRunFile file;
  writeSmallRun(file.path());
  execSql(file.path(), "DROP TABLE counter; DROP TABLE step_metric;");
  expectRefused(file.path(), "missing tables: counter, step_metric");
}

TEST(RunReader, RefusesATruncatedFile) {
  testing::TempRunFile file;
  writeSmallRun(file.path());
  const auto size = std::filesystem::file_size(file.path());
  ASSERT_GT(size, 8192u);
  std::filesystem::resize_file(file.path(), size / 2);
  expectRefused(file.path(), "truncated file");
}

TEST(RunReader, RefusesAFileTruncatedInsideItsHeader) {
  testing::TempRunFile file;
  writeSmallRun(file.path());
  std::filesystem::resize_file(file.path(), 50);
  expectRefused(file.path(), "truncated file");
}

TEST(RunReader, RefusesACorruptFile) {
  testing::TempRunFile file;
  writeSmallRun(file.path(), 20000);
  // Overwrite the pages after the first four (the schema) with garbage, keeping the length.
  const auto size = std::filesystem::file_size(file.path());
  {
    std::fstream f(file.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4 * 4096);
    std::string garbage(size - 4 * 4096, '\0');
    for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 7919) % 251);
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  expectRefused(file.path(), "corrupt file");
}

TEST(RunReader, RefusesAFileWithACorruptHeader) {
  testing::TempRunFile file;
  writeSmallRun(file.path());
  {
    std::fstream f(file.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.write("garbage garbage garbage", 23);
  }
  expectRefused(file.path(), "not a SQLite database");
}

TEST(RunReader, AParallelLoadGivesTheSameTrace) {
  testing::TempRunFile file;
  writeSmallRun(file.path(), 5000);
  auto reader = RunReader::open(file.path());
  const Trace serial = reader->load(std::numeric_limits<int64_t>::max());
  const Trace parallel = reader->load(2);
  ASSERT_GT(serial.spanCount(), 5000u);
  EXPECT_EQ(parallel.spans, serial.spans);
  EXPECT_EQ(parallel.loaded, serial.loaded);
  EXPECT_EQ(serial.loaded.span, static_cast<int64_t>(serial.spanCount()) - 1);
}

TEST(RunReader, LoadWindowKeepsOnlySpansThatIntersect) {
  testing::TempRunFile file;
  {
    auto w = RunWriter::create(file.path(), RunInfo{});
    w->addTrack({});
    const uint32_t n = w->intern("x");
    // [0,100) [50,60) [100,200) [150,400) [300,310)
    w->addSpans(std::vector<SpanRecord>{
        {0, 0, 100, n}, {0, 50, 60, n}, {0, 100, 200, n}, {0, 150, 400, n}, {0, 300, 310, n}});
  }
  const Trace t = RunReader::open(file.path())->loadWindow(120, 305);
  ASSERT_EQ(t.spans.size(), 1u);
  std::vector<int64_t> starts(t.spans[0].start.begin(), t.spans[0].start.end());
  EXPECT_EQ(starts, (std::vector<int64_t>{100, 150, 300}));
}

TEST(RunReader, LoadWindowOnAFileStillBeingWritten) {
  // Before the writer finishes there is no (track, start) index: the window scans the table and
  // finds the same spans.
  testing::TempRunFile file;
  auto w = RunWriter::create(file.path(), RunInfo{});
  w->addTrack({});
  w->addTrack({1, 0, TrackKind::HostThread, "second"});
  const uint32_t n = w->intern("x");
  w->addSpans(std::vector<SpanRecord>{
      {0, 0, 100, n}, {0, 50, 60, n}, {0, 100, 200, n}, {0, 150, 400, n}, {0, 300, 310, n}});
  w->addSpans(std::vector<SpanRecord>{{1, 90, 130, n}, {1, 310, 320, n}});
  w->commit();
  const auto starts = [](const Trace& t, size_t track) {
    return std::vector<int64_t>(t.spans[track].start.begin(), t.spans[track].start.end());
  };
  const Trace growing = RunReader::open(file.path())->loadWindow(120, 305);
  ASSERT_EQ(growing.spans.size(), 2u);
  EXPECT_EQ(starts(growing, 0), (std::vector<int64_t>{100, 150, 300}));
  EXPECT_EQ(starts(growing, 1), (std::vector<int64_t>{90}));
  w.reset();
  const Trace finished = RunReader::open(file.path())->loadWindow(120, 305);
  EXPECT_EQ(finished.spans, growing.spans);
}

TEST(RunReader, ReadsWhileAWriterCommits) {
  testing::TempRunFile file;
  constexpr int kBatches = 40, kPerBatch = 250;
  std::atomic<bool> created = false, done = false;
  std::thread writerThread([&] {
    auto w = RunWriter::create(file.path(), RunInfo{});
    w->addTrack({});
    const uint32_t n = w->intern("attention");
    w->commit();
    created = true;
    for (int b = 0; b < kBatches; ++b) {
      std::vector<SpanRecord> spans;
      for (int i = 0; i < kPerBatch; ++i) {
        const int64_t t = (b * kPerBatch + i) * 10;
        spans.push_back({0, t, t + 5, n, Category::ComputeAttention});
      }
      w->addSpans(spans);
      w->commit();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    w->setStatus(RunStatus::Complete, "", 0);
    w->commit();
    done = true;
  });
  while (!created) std::this_thread::yield();
  auto reader = RunReader::open(file.path());
  Trace t = reader->load();
  size_t refreshes = 0;
  for (;;) {
    const bool finished = done;
    // Every snapshot holds whole batches: commits are atomic.
    EXPECT_EQ(t.spanCount() % kPerBatch, 0u);
    if (reader->refresh(t)) ++refreshes;
    if (finished && t.run.status == RunStatus::Complete) break;
  }
  writerThread.join();
  reader->refresh(t);
  ASSERT_EQ(t.spanCount(), static_cast<size_t>(kBatches * kPerBatch));
  for (size_t i = 0; i < t.spans[0].size(); ++i) ASSERT_EQ(t.spans[0].start[i], static_cast<int64_t>(i) * 10);
  EXPECT_GE(refreshes, 2u);
  EXPECT_FALSE(reader->refresh(t));  // nothing new
}

TEST(RunReader, RefreshKeepsEachTrackSorted) {
  testing::TempRunFile file;
  auto w = RunWriter::create(file.path(), RunInfo{});
  w->addTrack({});
  const uint32_t n = w->intern("x");
  w->addSpans(std::vector<SpanRecord>{{0, 10, 20, n}, {0, 30, 40, n}});
  w->commit();
  auto reader = RunReader::open(file.path());
  Trace t = reader->load();
  // A parent span recorded after its children (the tracer writes spans when they end).
  w->addSpans(std::vector<SpanRecord>{{0, 5, 50, n}, {0, 60, 70, n}});
  w->commit();
  EXPECT_TRUE(reader->refresh(t));
  std::vector<int64_t> starts(t.spans[0].start.begin(), t.spans[0].start.end());
  EXPECT_EQ(starts, (std::vector<int64_t>{5, 10, 30, 60}));
  EXPECT_EQ(t.spans[0].maxDuration, 45);
}

TEST(RunReader, RefreshPicksUpNewTracksNamesCountersAndTheRunRow) {
  testing::TempRunFile file;
  auto w = RunWriter::create(file.path(), RunInfo{});
  w->addTrack({});
  w->commit();
  auto reader = RunReader::open(file.path());
  Trace t = reader->load();
  EXPECT_FALSE(reader->refresh(t));
  w->addTrack({0, 0, TrackKind::Counter, "memory"});
  const uint32_t n = w->intern("late name");
  w->addSpans(std::vector<SpanRecord>{{0, 1, 2, n}});
  w->addCounters(std::vector<CounterSample>{{1, 5, 9.0}});
  w->addStepMetric({.step = 0, .loss = 1.0});
  w->setMeta("k", "v");
  w->setStatus(RunStatus::Cancelled, "stopped", 77);
  w->commit();
  EXPECT_TRUE(reader->refresh(t));
  ASSERT_EQ(t.tracks.size(), 2u);
  EXPECT_EQ(t.tracks[1].name, "memory");
  ASSERT_EQ(t.spans.size(), 2u);
  EXPECT_EQ(t.name(t.spans[0].name[0]), "late name");
  EXPECT_EQ(t.counters, (std::vector<CounterSample>{{1, 5, 9.0}}));
  EXPECT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.meta.size(), 1u);
  EXPECT_EQ(t.run.status, RunStatus::Cancelled);
  EXPECT_EQ(t.run.error, "stopped");
  EXPECT_FALSE(reader->refresh(t));
}

TEST(RunReader, LoadWindowKeepsCountersAndGpuRecordsInTheWindow) {
  testing::TempRunFile file;
  {
    auto w = RunWriter::create(file.path(), RunInfo{});
    w->addTrack({0, 0, TrackKind::GpuStream, "stream 0"});
    w->addTrack({1, 0, TrackKind::Counter, "tokens"});
    w->addGpuActivity(std::vector<GpuActivityRecord>{{0, 0, 50}, {0, 90, 120}, {0, 300, 400}});
    w->addCounters(std::vector<CounterSample>{{1, 10, 1.0}, {1, 150, 2.0}, {1, 250, 3.0}});
  }
  const Trace t = RunReader::open(file.path())->loadWindow(100, 250);
  ASSERT_EQ(t.gpu.size(), 1u);
  EXPECT_EQ(t.gpu[0].start, 90);
  EXPECT_EQ(t.counters, (std::vector<CounterSample>{{1, 150, 2.0}}));
  EXPECT_EQ(t.tracks.size(), 2u);
}

TEST(RunReader, StepsAloneWhileTheRunIsWritten) {
  // A running run's progress: its step metrics, read without its spans, as they are committed.
  testing::TempRunFile file;
  auto w = RunWriter::create(file.path(), RunInfo{});
  w->addTrack({});
  w->commit();
  auto reader = RunReader::open(file.path());
  EXPECT_TRUE(reader->steps().empty());
  for (int32_t s = 0; s < 3; ++s) w->addStepMetric({.step = s, .loss = 5.0 - s, .step_ms = 10.0 + s});
  w->commit();
  const std::vector<StepMetric> steps = reader->steps();
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[2].step, 2);
  EXPECT_DOUBLE_EQ(steps[2].loss, 3.0);
  EXPECT_DOUBLE_EQ(steps[1].step_ms, 11.0);
}

}  // namespace
}  // namespace moescope::storage

namespace moescope::storage {
namespace {

std::string fileBytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every column a reader uses as an index, a size or a time, crafted out of range: the file is refused
// with one line naming the column and the value, never used (issue 12, class 1). Loading, a window and
// a refresh all read rows through the same checks (Row in run_reader.cpp).
TEST(RunReader, RefusesEveryValueOutOfRange) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"UPDATE span SET category = 200 WHERE id = 5",
       "span.category = 200 is outside 0.." + std::to_string(kCategoryCount - 1)},
      {"UPDATE span SET category = -1 WHERE id = 5", "span.category = -1"},
      {"UPDATE span SET phase = 9 WHERE id = 5", "span.phase = 9"},
      {"UPDATE span SET track = 4000000000 WHERE id = 5", "span.track = 4000000000"},
      {"UPDATE span SET step = 9223372036854775807 WHERE id = 5", "span.step"},
      {"UPDATE span SET microbatch = -7 WHERE id = 5", "span.microbatch = -7"},
      {"UPDATE span SET layer = 2147483648 WHERE id = 5", "span.layer"},
      {"UPDATE span SET expert = -2 WHERE id = 5", "span.expert = -2"},
      {"UPDATE span SET start = 9223372036854775807 WHERE id = 5", "span.start"},
      {"UPDATE span SET start = -1 WHERE id = 5", "span.start = -1"},
      {"UPDATE span SET \"end\" = -9223372036854775808 WHERE id = 5", "span.end"},
      {"UPDATE span SET bytes = -5 WHERE id = 5", "span.bytes = -5"},
      {"UPDATE span SET chunk = -3 WHERE id = 5", "span.chunk = -3"},
      {"UPDATE span SET chunk = 2147483648 WHERE id = 5", "span.chunk"},
      {"UPDATE span SET comm = -2 WHERE id = 5", "span.comm = -2"},
      {"UPDATE span SET seq = 2147483648 WHERE id = 5", "span.seq"},
      {"UPDATE span SET peer = -4 WHERE id = 5", "span.peer = -4"},
      {"UPDATE span SET name = 9223372036854775807 WHERE id = 5", "span.name"},
      {"UPDATE strings SET id = 4000000000 WHERE id = 1", "string ids are not dense"},
      {"UPDATE strings SET id = 9223372036854775807 WHERE id = 1", "string ids are not dense"},
      {"UPDATE track SET kind = 7 WHERE id = 0", "track.kind = 7"},
      {"UPDATE track SET rank = 2147483648 WHERE id = 0", "track.rank"},
      {"UPDATE track SET device = -9 WHERE id = 0", "track.device = -9"},
      {"UPDATE track SET max_duration = -1 WHERE id = 0", "track.max_duration = -1"},
      {"UPDATE track SET id = 4000000000 WHERE id = 0", "track ids are not dense"},
      {"UPDATE rank SET stage = 2147483648", "rank.stage"},
      {"UPDATE rank SET rank = -1 WHERE rank = 0", "rank.rank = -1"},
      {"UPDATE run SET pp = 0", "run.pp = 0"},
      {"UPDATE run SET tp = 4294967296", "run.tp"},
      {"UPDATE run SET microbatches = 4294967296", "run.microbatches"},
      {"UPDATE run SET schedule = 250", "run.schedule = 250"},
      {"UPDATE run SET virtual_stages = 0", "run.virtual_stages = 0"},
      {"UPDATE run SET virtual_stages = 4294967296", "run.virtual_stages"},
      {"UPDATE run SET status = 9", "run.status = 9"},
      {"UPDATE run SET tokens_per_step = -1", "run.tokens_per_step = -1"},
      {"UPDATE run SET start_ns = -5", "run.start_ns = -5"},
      {"UPDATE step_metric SET tokens = 9223372036854775807", "step_metric.tokens"},
      {"UPDATE step_metric SET step = -3 WHERE step = (SELECT min(step) FROM step_metric)",
       "step_metric.step = -3"},
      {"UPDATE step_metric SET end_ns = 0", "step_metric.end_ns = 0"},
      {"UPDATE step_metric SET peak_memory_bytes = -1", "step_metric.peak_memory_bytes = -1"},
      {"UPDATE step_metric SET peak_memory_bytes = 9223372036854775807", "step_metric.peak_memory_bytes"},
      {"UPDATE step_metric SET peak_memory_bytes = 'lots'",
       "step_metric.peak_memory_bytes is not an integer"},
      {"UPDATE step_metric SET peak_memory_bytes = 1.5", "step_metric.peak_memory_bytes is not an integer"},
      {"INSERT INTO counter (track, time, value) VALUES (99, 5, 1.0)", "counter.track = 99"},
      {"INSERT INTO counter (track, time, value) VALUES (0, 5, 1e999)", "counter.value is not finite"},
      {"INSERT INTO gpu_activity (track, start, \"end\", name, kind, device, stream, correlation, span, "
       "bytes) "
       "VALUES (0, 10, 5, 0, 0, 0, 0, 0, -1, 0)",
       "gpu_activity.end = 5"},
      {"INSERT INTO gpu_activity (track, start, \"end\", name, kind, device, stream, correlation, span, "
       "bytes) "
       "VALUES (0, 10, 15, 0, 3, 0, 0, 0, -1, 0)",
       "gpu_activity.kind = 3"},
      {"INSERT INTO gpu_activity (track, start, \"end\", name, kind, device, stream, correlation, span, "
       "bytes) "
       "VALUES (0, 10, 15, 0, 0, 0, 0, 0, -5, 0)",
       "gpu_activity.span = -5"},
  };
  testing::TempRunFile file;
  writeSmallRun(file.path(), 400);
  const std::string good = fileBytes(file.path());
  for (const auto& [sql, words] : cases) {
    writeBytes(file.path(), good);
    execSql(file.path(), sql.c_str());
    expectRefused(file.path(), words);
    const std::string crafted = fileBytes(file.path());
    EXPECT_EQ(fileBytes(file.path()), crafted) << "reading changed the file: " << sql;
  }
}

// A name id the string table lacks is an unknown name (empty), not an index.
TEST(RunReader, ANameMissingFromTheStringTableIsEmpty) {
  testing::TempRunFile file;
  writeSmallRun(file.path(), 400);
  execSql(file.path(), "UPDATE span SET name = 4000000000 WHERE id = 3");
  const Trace t = RunReader::open(file.path())->load();
  EXPECT_EQ(t.name(4000000000u), "");
}

// Reading opens read-only: a file of an unknown (negative) version is refused, not rewritten.
TEST(RunReader, NeverWritesTheFile) {
  testing::TempRunFile file;
  writeSmallRun(file.path(), 400);
  execSql(file.path(), "PRAGMA user_version = -1");
  const std::string before = fileBytes(file.path());
  expectRefused(file.path(), "schema version -1");
  EXPECT_EQ(fileBytes(file.path()), before);
  EXPECT_FALSE(std::filesystem::exists(file.path().string() + "-wal"));
}

// A -wal beside a finished file (rollback journal) cannot be its own: it is ignored, not replayed.
TEST(RunReader, IgnoresAStaleWal) {
  testing::TempRunFile file;
  writeSmallRun(file.path(), 400);
  const size_t spans = RunReader::open(file.path())->load().spanCount();
  const auto other = file.sibling("other.moescope");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA journal_mode = WAL; CREATE TABLE x (y); DELETE FROM x;", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  std::filesystem::copy_file(other.string() + "-wal", file.path().string() + "-wal");
  sqlite3_close(db);
  EXPECT_EQ(RunReader::open(file.path())->load().spanCount(), spans);
  EXPECT_EQ(RunReader::open(file.path())->load(1).spanCount(), spans);  // the parallel load too
}

}  // namespace
}  // namespace moescope::storage
