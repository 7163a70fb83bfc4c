#include "storage/sqlite_util.h"

#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"

namespace moescope::storage::sqlite {
namespace {

std::string messageOf(auto&& f) {
  try {
    f();
  } catch (const StorageError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SqliteUtil, AFailedCallNamesTheFileTheProblemAndTheSourceLine) {
  testing::TempRunFile file;
  Db db(file.path(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const std::string m = messageOf([&] { db.exec("SELEKT 1", "checking the syntax"); });
  EXPECT_NE(m.find(file.path().string() + ": checking the syntax ("), std::string::npos) << m;
  EXPECT_NE(m.find("syntax error"), std::string::npos) << m;
  EXPECT_NE(m.find("[storage/sqlite_util_test.cpp:"), std::string::npos) << m;
}

TEST(SqliteUtil, CorruptionIsReportedAsACorruptFile) {
  const std::string m =
      messageOf([] { fail(nullptr, SQLITE_CORRUPT, "x.moescope", "reading spans", __FILE__, __LINE__); });
  EXPECT_EQ(m.rfind("x.moescope: corrupt file while reading spans (", 0), 0u) << m;
}

TEST(SqliteUtil, OpeningAMissingFileReadOnlyFails) {
  testing::TempRunFile file;
  const std::string m = messageOf([&] { Db db(file.path(), SQLITE_OPEN_READONLY); });
  EXPECT_NE(m.find(file.path().string() + ": cannot open"), std::string::npos) << m;
}

TEST(SqliteUtil, StatementsBindStepAndRead) {
  testing::TempRunFile file;
  Db db(file.path(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  db.exec("CREATE TABLE t (a INTEGER, b REAL, c TEXT)", "creating");
  Stmt insert(db, "INSERT INTO t VALUES (?, ?, ?)");
  insert.bind(1, int64_t{1} << 40);
  insert.bind(2, 2.5);
  insert.bind(3, std::string_view("text"));
  insert.run();
  Stmt select(db, "SELECT a, b, c FROM t");
  ASSERT_TRUE(select.step());
  EXPECT_EQ(select.int64(0), int64_t{1} << 40);
  EXPECT_EQ(select.real(1), 2.5);
  EXPECT_EQ(select.text(2), "text");
  EXPECT_FALSE(select.step());
  EXPECT_EQ(db.queryInt("SELECT count(*) FROM t"), 1);
}

}  // namespace
}  // namespace moescope::storage::sqlite
