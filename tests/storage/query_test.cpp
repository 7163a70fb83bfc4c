// The query panel's SQL: one read-only statement on the run file, its rows as text; a write, a second
// statement, a bad statement or a runaway one is refused with SQLite's reason, and the file is unchanged.
#include "storage/query.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

void writeRun(const std::filesystem::path& path) {
  auto w = RunWriter::create(path, RunInfo{});
  w->addTrack({});
  const uint32_t attn = w->intern("attention");
  std::vector<SpanRecord> spans;
  for (int i = 0; i < 5; ++i) spans.push_back({.start = i * 100, .end = i * 100 + 40, .name = attn});
  w->addSpans(spans);
  w->setStatus(RunStatus::Complete, "", 500);
}

std::string bytesOf(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(Query, RowsAsText) {
  testing::TempRunFile file;
  writeRun(file.path());
  const QueryResult r =
      runQuery(file.path(),
               "SELECT s.text AS name, count(*) AS n, sum(x.\"end\" - x.start) AS ns, NULL AS none "
               "FROM span x JOIN strings s ON s.id = x.name GROUP BY x.name;");
  EXPECT_EQ(r.columns, (std::vector<std::string>{"name", "n", "ns", "none"}));
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0], (std::vector<std::string>{"attention", "5", "200", "NULL"}));
  EXPECT_FALSE(r.truncated);
}

TEST(Query, AtMostMaxRows) {
  testing::TempRunFile file;
  writeRun(file.path());
  const QueryResult r = runQuery(file.path(), "SELECT id FROM span ORDER BY id", 3);
  EXPECT_EQ(r.rows.size(), 3u);
  EXPECT_TRUE(r.truncated);
}

TEST(Query, WritesAreRefusedAndTheFileIsUnchanged) {
  testing::TempRunFile file;
  writeRun(file.path());
  const std::string before = bytesOf(file.path());
  for (const char* sql : {"DELETE FROM span", "UPDATE span SET category = 200", "DROP TABLE span",
                          "PRAGMA user_version = 99", "CREATE TABLE x (a)"}) {
    EXPECT_THROW(runQuery(file.path(), sql), StorageError) << sql;
  }
  EXPECT_EQ(bytesOf(file.path()), before);
  EXPECT_EQ(RunReader::open(file.path())->load().spanCount(), 5u);
}

TEST(Query, OneStatementAtATime) {
  testing::TempRunFile file;
  writeRun(file.path());
  try {
    runQuery(file.path(), "SELECT 1; DELETE FROM span");
    FAIL() << "a second statement ran";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("one statement"), std::string::npos) << e.what();
  }
  EXPECT_EQ(RunReader::open(file.path())->load().spanCount(), 5u);
}

TEST(Query, ABadStatementSaysWhy) {
  testing::TempRunFile file;
  writeRun(file.path());
  try {
    runQuery(file.path(), "SELECT missing FROM nowhere");
    FAIL();
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("no such table"), std::string::npos) << e.what();
  }
}

TEST(Query, ARunawayQueryIsStopped) {
  testing::TempRunFile file;
  writeRun(file.path());
  // A recursive count to a billion: far past the 50 ms allowed here.
  try {
    runQuery(file.path(),
             "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
             "SELECT count(*) FROM c",
             10, 50);
    FAIL();
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("stopped"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moescope::storage
