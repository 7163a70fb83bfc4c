#include "storage/schema.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <set>
#include <string>

#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

std::set<std::string> query(const std::filesystem::path& file, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK);
  std::set<std::string> out;
  while (sqlite3_step(st) == SQLITE_ROW)
    out.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST(Schema, ANewFileHasTheVersionTheTablesAndTheTimeIndexes) {
  testing::TempRunFile file;
  RunWriter::create(file.path(), RunInfo{}).reset();
  EXPECT_EQ(query(file.path(), "PRAGMA user_version"),
            (std::set<std::string>{std::to_string(schema::kVersion)}));
  const auto tables = query(file.path(), "SELECT name FROM sqlite_master WHERE type = 'table'");
  const std::set<std::string> required(schema::requiredTables().begin(), schema::requiredTables().end());
  EXPECT_EQ(tables, required);
  const auto indexes =
      query(file.path(), "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL");
  EXPECT_TRUE(indexes.count("CREATE INDEX span_track_start ON span (track, start)"));
  EXPECT_TRUE(indexes.count("CREATE INDEX gpu_activity_track_start ON gpu_activity (track, start)"));
  EXPECT_TRUE(indexes.count("CREATE INDEX counter_track_time ON counter (track, time)"));
  // WAL while the writer is open; a finished file is back to a rollback journal.
  EXPECT_EQ(query(file.path(), "PRAGMA journal_mode"), (std::set<std::string>{"delete"}));
}

TEST(Schema, AFileIsInWalModeWhileItIsWritten) {
  testing::TempRunFile file;
  auto writer = RunWriter::create(file.path(), RunInfo{});
  EXPECT_EQ(query(file.path(), "PRAGMA journal_mode"), (std::set<std::string>{"wal"}));
}

TEST(Schema, TheSpanIndexIsBuiltWhenTheWriterFinishes) {
  testing::TempRunFile file;
  auto writer = RunWriter::create(file.path(), RunInfo{});
  writer->addTrack({});
  writer->addSpans(std::vector<SpanRecord>(3));
  writer->commit();
  const char* spanIndexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'span'";
  EXPECT_EQ(query(file.path(), spanIndexes), std::set<std::string>{});
  writer->finish();
  EXPECT_EQ(query(file.path(), spanIndexes), (std::set<std::string>{std::string(schema::finishedIndex())}));
  // Spans written after the finish go into the index as they come.
  writer->addSpans(std::vector<SpanRecord>(2));
  writer.reset();
  EXPECT_EQ(query(file.path(), "SELECT count(*) FROM span INDEXED BY span_track_start WHERE track = 0"),
            (std::set<std::string>{"5"}));
}

// Runs statements on a file with a connection of its own.
void execute(const std::filesystem::path& file, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

// What each migration added, dropped again to make a file as an older version wrote it.
constexpr const char* kDropVersion2Columns =
    "ALTER TABLE span DROP COLUMN chunk; ALTER TABLE run DROP COLUMN virtual_stages;";
constexpr const char* kDropVersion3Columns =
    "ALTER TABLE gpu_activity DROP COLUMN grid_x; ALTER TABLE gpu_activity DROP COLUMN grid_y;"
    "ALTER TABLE gpu_activity DROP COLUMN grid_z; ALTER TABLE gpu_activity DROP COLUMN block_x;"
    "ALTER TABLE gpu_activity DROP COLUMN block_y; ALTER TABLE gpu_activity DROP COLUMN block_z;"
    "ALTER TABLE gpu_activity DROP COLUMN registers; ALTER TABLE gpu_activity DROP COLUMN shared_static;"
    "ALTER TABLE gpu_activity DROP COLUMN shared_dynamic;";
constexpr const char* kDropVersion4Columns =
    "ALTER TABLE span DROP COLUMN comm; ALTER TABLE span DROP COLUMN seq; ALTER TABLE span DROP COLUMN peer;";
constexpr const char* kDropVersion5Tables = "DROP TABLE moe_routing; DROP TABLE moe_expert_load;";
constexpr const char* kDropVersion6Columns = "ALTER TABLE step_metric DROP COLUMN peak_memory_bytes;";

// A version-1 file (written as one, then what versions 2 to 6 added dropped) opens with the chunk columns
// added: its spans have no chunk, its run one virtual stage. The upgrade happens in memory: reading
// never changes the file, which stays at version 1 (docs/RELIABILITY.md).
TEST(Schema, AVersion1FileGainsTheScheduleChunkColumns) {
  testing::TempRunFile file;
  {
    RunInfo run;
    run.schedule = Schedule::OneFOneB;
    run.virtual_stages = 3;  // dropped below with its column
    auto writer = RunWriter::create(file.path(), run);
    writer->addTrack({});
    SpanRecord span;
    span.end = 10;
    span.microbatch = 2;
    span.chunk = 1;
    writer->addSpans(std::vector<SpanRecord>{span});
  }
  execute(file.path(), (std::string(kDropVersion6Columns) + kDropVersion5Tables + kDropVersion4Columns +
                        kDropVersion3Columns + kDropVersion2Columns + "PRAGMA user_version = 1;")
                           .c_str());
  const Trace t = RunReader::open(file.path())->load();
  EXPECT_EQ(query(file.path(), "PRAGMA user_version"), (std::set<std::string>{"1"}));
  EXPECT_EQ(t.run.virtual_stages, 1);
  ASSERT_EQ(t.spans.size(), 1u);
  ASSERT_EQ(t.spans[0].size(), 1u);
  EXPECT_EQ(t.spans[0].at(0, 0).microbatch, 2);
  EXPECT_EQ(t.spans[0].at(0, 0).chunk, kNone);
  EXPECT_EQ(t.spans[0].at(0, 0).comm, kNone);
  EXPECT_EQ(t.spans[0].at(0, 0).peer, kNone);
}

GpuActivityRecord kernel(int32_t track, int64_t start) {
  GpuActivityRecord g;
  g.track = track;
  g.start = start;
  g.end = start + 1000;
  g.correlation = 42;
  g.launch = {.grid_x = 128,
              .grid_y = 2,
              .grid_z = 1,
              .block_x = 256,
              .block_y = 1,
              .block_z = 1,
              .registers = 96,
              .shared_static = 4096,
              .shared_dynamic = 49152};
  return g;
}

TEST(Schema, AKernelsLaunchIsWrittenAndReadBack) {
  testing::TempRunFile file;
  {
    auto writer = RunWriter::create(file.path(), RunInfo{});
    writer->addTrack({});
    writer->addGpuActivity(std::vector<GpuActivityRecord>{kernel(0, 100)});
    writer->setStatus(RunStatus::Complete, "", 2000);
  }
  const Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.gpu.size(), 1u);
  EXPECT_EQ(t.gpu[0].launch, kernel(0, 100).launch);
  EXPECT_EQ(t.gpu[0].correlation, 42);
}

// A file of version 1 or 2 (both lack the launch columns) opens with its kernels' launches zero, and
// is left as it was.
void checkAnOlderFileOpensWithItsKernelsLaunchesZero(bool fromVersion1) {
  testing::TempRunFile file;
  {
    auto writer = RunWriter::create(file.path(), RunInfo{});
    writer->addTrack({});
    writer->setStatus(RunStatus::Complete, "", 2000);
  }
  // The file as that version wrote it: gpu_activity without the launch columns, one kernel in it.
  execute(
      file.path(),
      (std::string(kDropVersion6Columns) + kDropVersion5Tables + kDropVersion4Columns + kDropVersion3Columns +
       "INSERT INTO gpu_activity (track, start, \"end\", name, kind, device, stream, correlation, span, "
       "bytes) VALUES (0, 10, 20, 0, 0, 0, 7, 5, -1, 0);" +
       (fromVersion1 ? std::string(kDropVersion2Columns) + "PRAGMA user_version = 1;"
                     : "PRAGMA user_version = 2;"))
          .c_str());
  EXPECT_EQ(
      query(file.path(), "SELECT count(*) FROM pragma_table_info('gpu_activity') WHERE name = 'grid_x'"),
      (std::set<std::string>{"0"}));
  const Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.gpu.size(), 1u);
  EXPECT_EQ(t.gpu[0].correlation, 5);
  EXPECT_EQ(t.gpu[0].launch, KernelLaunch{});
  // Brought up to date in memory; the file keeps its version and its columns.
  EXPECT_EQ(query(file.path(), "PRAGMA user_version"), (std::set<std::string>{fromVersion1 ? "1" : "2"}));
  EXPECT_EQ(
      query(file.path(), "SELECT count(*) FROM pragma_table_info('gpu_activity') WHERE name = 'grid_x'"),
      (std::set<std::string>{"0"}));
}

TEST(Schema, AVersion1FileOpensWithItsKernelsLaunchesZero) {
  checkAnOlderFileOpensWithItsKernelsLaunchesZero(true);
}

TEST(Schema, AVersion2FileOpensWithItsKernelsLaunchesZero) {
  checkAnOlderFileOpensWithItsKernelsLaunchesZero(false);
}

// A span of communicator 4's call 9 with rank 1.
SpanRecord commCall(Category category) {
  SpanRecord s;
  s.end = 10;
  s.category = category;
  s.comm = 4;
  s.seq = 9;
  s.peer = 1;
  return s;
}

// A version-3 file opens with the communication call's columns added: its spans have no call identity,
// and what version 3 added (a kernel's launch) is read as written.
TEST(Schema, AVersion3FileGainsTheCommunicationCallColumns) {
  testing::TempRunFile file;
  {
    auto writer = RunWriter::create(file.path(), RunInfo{});
    writer->addTrack({});
    SpanRecord span = commCall(Category::CommTpAllreduce);
    span.chunk = 1;
    writer->addSpans(std::vector<SpanRecord>{span});
    writer->addGpuActivity(std::vector<GpuActivityRecord>{kernel(0, 100)});
  }
  execute(file.path(), (std::string(kDropVersion6Columns) + kDropVersion5Tables + kDropVersion4Columns +
                        "PRAGMA user_version = 3;")
                           .c_str());
  const Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.spans.size(), 1u);
  const SpanView v = t.spans[0].at(0, 0);
  EXPECT_EQ(v.chunk, 1);
  EXPECT_EQ(v.comm, kNone);
  EXPECT_EQ(v.seq, kNone);
  EXPECT_EQ(v.peer, kNone);
  ASSERT_EQ(t.gpu.size(), 1u);
  EXPECT_EQ(t.gpu[0].launch, kernel(0, 100).launch);
}

// A current file keeps each span's call identity.
TEST(Schema, ASpansCommunicationCallIsWrittenAndReadBack) {
  testing::TempRunFile file;
  {
    auto writer = RunWriter::create(file.path(), RunInfo{});
    writer->addTrack({});
    writer->addSpans(std::vector<SpanRecord>{commCall(Category::Wait)});
  }
  const Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.spans.size(), 1u);
  const SpanView v = t.spans[0].at(0, 0);
  EXPECT_EQ(v.comm, 4);
  EXPECT_EQ(v.seq, 9);
  EXPECT_EQ(v.peer, 1);
}

// A version-4 file (no routing tables) opens with them added, empty: its run recorded no routing. The
// tables exist only in the copy in memory; the file stays at version 4 without them.
TEST(Schema, AVersion4FileGainsTheRoutingTables) {
  testing::TempRunFile file;
  {
    auto writer = RunWriter::create(file.path(), RunInfo{});
    writer->addMoeRouting(std::vector<MoeRouting>{{0, 0, 1, 0, 4, 0, {2, 2}}});
  }
  execute(file.path(),
          (std::string(kDropVersion6Columns) + kDropVersion5Tables + "PRAGMA user_version = 4;").c_str());
  EXPECT_TRUE(RunReader::open(file.path())->load().routing.empty());
  EXPECT_EQ(query(file.path(), "PRAGMA user_version"), (std::set<std::string>{"4"}));
  EXPECT_EQ(query(file.path(), "SELECT count(*) FROM sqlite_master WHERE name = 'moe_routing'"),
            (std::set<std::string>{"0"}));
}

StepMetric stepWithPeak(int32_t step, int64_t peak) {
  StepMetric m;
  m.step = step;
  m.tokens = 64;
  m.start_ns = 100 * step;
  m.end_ns = 100 * step + 50;
  m.peak_memory_bytes = peak;
  return m;
}

// Each step's device memory peak is written and read back; a step whose backend counted none is NULL
// in the file (not a zero a query would average in) and reads as 0.
TEST(Schema, AStepsPeakMemoryIsWrittenAndReadBackAndNullWhenNotCounted) {
  testing::TempRunFile file;
  {
    auto writer = RunWriter::create(file.path(), RunInfo{});
    writer->addStepMetric(stepWithPeak(0, int64_t{17} << 30));
    writer->addStepMetric(stepWithPeak(1, 0));
  }
  const Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.steps.size(), 2u);
  EXPECT_EQ(t.steps[0], stepWithPeak(0, int64_t{17} << 30));
  EXPECT_EQ(t.steps[1], stepWithPeak(1, 0));
  EXPECT_EQ(query(file.path(), "SELECT step FROM step_metric WHERE peak_memory_bytes IS NULL"),
            (std::set<std::string>{"1"}));
}

// A version-5 file (no peak column) opens with every step's peak 0, not counted; the column exists only
// in the copy in memory, the file stays at version 5 without it.
TEST(Schema, AVersion5FileGainsTheStepPeakMemoryColumn) {
  testing::TempRunFile file;
  {
    auto writer = RunWriter::create(file.path(), RunInfo{});
    writer->addStepMetric(stepWithPeak(0, 0));
    writer->addStepMetric(stepWithPeak(1, 0));
  }
  execute(file.path(), (std::string(kDropVersion6Columns) + "PRAGMA user_version = 5;").c_str());
  const Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.steps.size(), 2u);
  EXPECT_EQ(t.steps[1], stepWithPeak(1, 0));
  EXPECT_EQ(query(file.path(), "PRAGMA user_version"), (std::set<std::string>{"5"}));
  EXPECT_EQ(query(file.path(),
                  "SELECT count(*) FROM pragma_table_info('step_metric') WHERE name = 'peak_memory_bytes'"),
            (std::set<std::string>{"0"}));
}

TEST(Schema, MigrationsFormAChainEndingAtTheCurrentVersion) {
  int expected = 1;
  for (const schema::Migration& m : schema::migrations()) {
    EXPECT_EQ(m.from, expected);
    ++expected;
  }
  EXPECT_EQ(expected, schema::kVersion);
}

}  // namespace
}  // namespace moescope::storage
