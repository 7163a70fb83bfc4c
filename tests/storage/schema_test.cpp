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

void execute(const std::filesystem::path& file, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

// A version-1 file (written as one, then its version-2 columns and version-3 tables dropped) opens with
// the chunk columns added: its spans have no chunk, its run one virtual stage.
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
  execute(file.path(),
          "ALTER TABLE span DROP COLUMN chunk; ALTER TABLE run DROP COLUMN virtual_stages; "
          "DROP TABLE moe_routing; DROP TABLE moe_expert_load; PRAGMA user_version = 1;");
  const Trace t = RunReader::open(file.path())->load();
  EXPECT_EQ(query(file.path(), "PRAGMA user_version"),
            (std::set<std::string>{std::to_string(schema::kVersion)}));
  EXPECT_EQ(t.run.virtual_stages, 1);
  ASSERT_EQ(t.spans.size(), 1u);
  ASSERT_EQ(t.spans[0].size(), 1u);
  EXPECT_EQ(t.spans[0].at(0, 0).microbatch, 2);
  EXPECT_EQ(t.spans[0].at(0, 0).chunk, kNone);
}

// A version-2 file (no routing tables) opens with them added, empty: its run recorded no routing.
TEST(Schema, AVersion2FileGainsTheRoutingTables) {
  testing::TempRunFile file;
  {
    auto writer = RunWriter::create(file.path(), RunInfo{});
    writer->addMoeRouting(std::vector<MoeRouting>{{0, 0, 1, 0, 4, 0, {2, 2}}});
  }
  execute(file.path(), "DROP TABLE moe_routing; DROP TABLE moe_expert_load; PRAGMA user_version = 2;");
  EXPECT_TRUE(RunReader::open(file.path())->load().routing.empty());
  EXPECT_EQ(query(file.path(), "SELECT count(*) FROM moe_routing"), (std::set<std::string>{"0"}));
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
