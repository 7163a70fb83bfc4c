// Reading run files, as a hostile user tries it (issue 12, classes 1, 6, 8 and 9): every value of a
// crafted file is checked before use, so stats, export and compare answer a bad one with one line and
// exit 2 and never crash or allocate from it; reading never changes a file; names in broken UTF-8 come
// out as valid text; a stale -wal never overrides the file beside it; a finished run is one file.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "storage/run_reader.h"
#include "tests/app/cli_test_util.h"

namespace moescope::app {
namespace {

using testing::CliFolder;
using testing::CliResult;

void execSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db) << ": " << sql;
  sqlite3_close(db);
}

class CliReaders : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(folder_.run("generate -o good.moescope --stages 2 --microbatches 2 --spans 400").code, 0);
  }
  // A copy of the good run with `sql` applied to it.
  std::string crafted(const std::string& name, const std::string& sql) {
    std::filesystem::copy_file(folder_.path("good.moescope"), folder_.path(name),
                               std::filesystem::copy_options::overwrite_existing);
    execSql(folder_.path(name), sql);
    return name;
  }
  CliFolder folder_;
};

// 1. Memory safety: a crafted value (tests/storage/run_reader_test.cpp tries every column) is refused
// by every reading command with one line naming the file and exit 2; the folder stays as it was.
TEST_F(CliReaders, CraftedValuesAreBadInputForEveryCommand) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"UPDATE span SET category = 200 WHERE id = 5", "span.category = 200"},
      {"UPDATE strings SET id = 4000000000 WHERE id = 1", "string ids are not dense"},
      {"UPDATE span SET start = 9223372036854775807 WHERE id = 5", "span.start"},
  };
  int n = 0;
  for (const auto& [sql, words] : cases) {
    const std::string file = crafted("bad" + std::to_string(n++) + ".moescope", sql);
    for (const std::string& command : {"stats " + file, "export " + file + " --format chrome -o out.json",
                                       "compare good.moescope " + file}) {
      testing::expectRefused(folder_, command, words);
    }
  }
}

// 6. Readers never write: a file of an unknown version is refused without being "migrated", and
// reading a good file changes no byte of it and leaves nothing beside it.
TEST_F(CliReaders, ReadingNeverChangesAFile) {
  crafted("negative.moescope", "PRAGMA user_version = -1");
  testing::expectRefused(folder_, "stats negative.moescope", "not a moescope run file");
  const auto before = folder_.snapshot();
  for (const char* command : {"stats --json good.moescope", "compare good.moescope good.moescope",
                              "export good.moescope --format csv -o -"}) {
    EXPECT_EQ(folder_.run(command).code, 0) << command;
    EXPECT_TRUE(folder_.snapshot() == before) << command << " changed the folder";
  }
}

// 8. Text: names in broken UTF-8 or with NUL bytes come out as valid UTF-8 (U+FFFD in their place):
// stats --json and the Chrome export parse with a strict decoder, the CSV has no NUL byte.
TEST_F(CliReaders, BrokenTextComesOutValid) {
  crafted("text.moescope",
          "UPDATE strings SET text = CAST(X'61ff62c3' AS TEXT) WHERE id = 0;"
          "UPDATE strings SET text = CAST(X'6e00756c' AS TEXT) WHERE id = 1;"
          "UPDATE run SET name = CAST(X'72756efe' AS TEXT), error = CAST(X'c0af' AS TEXT)");
  const CliResult stats = folder_.run("stats --json text.moescope");
  ASSERT_EQ(stats.code, 0) << stats.err;
  const auto j = nlohmann::json::parse(stats.out);  // throws on invalid UTF-8
  EXPECT_EQ(j["run"]["name"], "run\xEF\xBF\xBD");
  ASSERT_EQ(folder_.run("export text.moescope --format chrome -o t.json").code, 0);
  const auto chrome = nlohmann::json::parse(folder_.read("t.json"));
  bool replaced = false;
  for (const auto& e : chrome["traceEvents"]) {
    if (e.contains("name") && e["name"].is_string() &&
        e["name"] ==
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD")
      replaced = true;
  }
  EXPECT_TRUE(replaced);
  ASSERT_EQ(folder_.run("export text.moescope --format csv -o t.csv").code, 0);
  const std::string csv = folder_.read("t.csv");
  EXPECT_EQ(csv.find('\0'), std::string::npos);
  EXPECT_NE(csv.find("n\xEF\xBF\xBDul"), std::string::npos);
}

// 9. A stale -wal (from an earlier run of the same name, killed before its checkpoint) beside a file
// that was replaced by a finished one is not replayed onto it.
TEST_F(CliReaders, AStaleWalDoesNotOverrideTheFileBesideIt) {
  // A killed run: its rows only in the WAL. SQLite keeps the WAL when the process dies, so copy it
  // while the connection is still open.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(folder_.path("killed.moescope").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    std::filesystem::copy_file(folder_.path("killed.moescope-wal"), folder_.path("stale-wal"));
    sqlite3_close(db);
  }
  std::filesystem::copy_file(folder_.path("stale-wal"), folder_.path("good.moescope-wal"));
  const auto before = folder_.snapshot();
  const CliResult r = folder_.run("stats --json good.moescope");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(
      nlohmann::json::parse(r.out)["run"]["spans"].get<int64_t>(),
      static_cast<int64_t>(storage::RunReader::open(folder_.path("good.moescope"))->load().spanCount()));
  EXPECT_TRUE(folder_.snapshot() == before);
}

// 9. A finished run is one file, even when a reader (the GUI) held it open while it finished: a copy
// of the .moescope alone holds the whole run.
TEST_F(CliReaders, AFinishedRunIsOneFileEvenWithAReaderOpen) {
  folder_.write("tiny.toml",
                "[model]\nvocab_size = 256\nseq_len = 8\nd_model = 16\nn_heads = 2\nn_layers = 2\nd_ff = 32\n"
                "n_experts = 0\n[parallel]\npp = 2\n[train]\nglobal_batch = 2\nsteps = 30\n");
  const pid_t pid = folder_.spawn("train --config tiny.toml --data random --out run.moescope");
  std::unique_ptr<storage::RunReader> reader;
  for (int i = 0; i < 4000 && !reader; ++i) {
    try {
      reader = storage::RunReader::open(folder_.path("run.moescope"));
      reader->load();
    } catch (const storage::StorageError&) {
      reader.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ASSERT_TRUE(reader) << "the run file never became readable";
  EXPECT_EQ(CliFolder::wait(pid), 0) << folder_.spawnedErr();
  std::filesystem::create_directory(folder_.path("copy"));
  std::filesystem::copy_file(folder_.path("run.moescope"), folder_.path("copy/run.moescope"));
  reader.reset();
  const auto whole = storage::RunReader::open(folder_.path("copy/run.moescope"))->load();
  EXPECT_EQ(whole.run.status, storage::RunStatus::Complete);
  EXPECT_EQ(whole.steps.size(), 30u);
  // Beside it, at most an empty -wal: the checkpoint moved every page into the file, and while the
  // reader had the file open, the switch back to a rollback journal (which removes it) could not run.
  const std::string wal = folder_.path("run.moescope-wal");
  if (std::filesystem::exists(wal)) {
    EXPECT_EQ(std::filesystem::file_size(wal), 0u);
  }
}

}  // namespace
}  // namespace moescope::app
