// A finished run is one file: when a reader (the GUI following the run) held the file as its writer
// finished, the data stay in the -wal and a copy of the .moescope alone is an empty database; once the
// reader lets go, foldWal puts them in the file and leaves no -wal. While a run is written, or another
// connection holds the file, it changes nothing.
#include "storage/wal_fold.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <vector>

#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

std::filesystem::path walOf(const std::filesystem::path& file) {
  std::filesystem::path wal = file;
  wal += "-wal";
  return wal;
}

std::vector<SpanRecord> spans(int n) {
  std::vector<SpanRecord> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)].start = i * 100;
    out[static_cast<size_t>(i)].end = i * 100 + 50;
  }
  return out;
}

TEST(WalFold, AFinishedRunFollowedByAReaderBecomesOneFile) {
  testing::TempRunFile file;
  auto writer = RunWriter::create(file.path(), RunInfo{});
  writer->addTrack({});
  writer->commit();
  // The GUI following the run, in a read of its own as the writer finishes: the writer's last
  // checkpoint cannot move the pages the reader may still need, so the spans stay in the -wal.
  sqlite3* follower = nullptr;
  ASSERT_EQ(sqlite3_open_v2(file.path().c_str(), &follower, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(follower, "BEGIN; SELECT count(*) FROM span;", nullptr, nullptr, nullptr),
            SQLITE_OK);
  writer->addSpans(spans(1000));
  writer->setStatus(RunStatus::Complete, "", 100'000);
  writer.reset();
  ASSERT_TRUE(std::filesystem::exists(walOf(file.path())));
  std::string why;
  EXPECT_FALSE(foldWal(file.path(), &why));  // the follower still holds it
  EXPECT_NE(why.find("another connection"), std::string::npos) << why;
  // A copy of the file alone: its spans are not in it.
  const auto early = file.sibling("early.moescope");
  std::filesystem::copy_file(file.path(), early);
  try {
    EXPECT_EQ(RunReader::open(early)->load().spanCount(), 0u);
  } catch (const StorageError&) {
    // or it does not open at all
  }

  sqlite3_exec(follower, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(follower);
  EXPECT_TRUE(foldWal(file.path(), &why)) << why;
  EXPECT_FALSE(std::filesystem::exists(walOf(file.path())));
  const auto copy = file.sibling("copy.moescope");
  std::filesystem::copy_file(file.path(), copy);
  const Trace t = RunReader::open(copy)->load();
  EXPECT_EQ(t.spanCount(), 1000u);
  EXPECT_EQ(t.run.status, RunStatus::Complete);
}

TEST(WalFold, ARunStillWrittenIsLeftAlone) {
  testing::TempRunFile file;
  auto writer = RunWriter::create(file.path(), RunInfo{});
  writer->addTrack({});
  writer->addSpans(spans(10));
  writer->commit();
  std::string why;
  EXPECT_FALSE(foldWal(file.path(), &why));
  EXPECT_NE(why.find("still being written"), std::string::npos) << why;
  EXPECT_TRUE(std::filesystem::exists(walOf(file.path())));
  writer->addSpans(spans(5));  // the writer goes on unhindered
  writer->setStatus(RunStatus::Complete, "", 1000);
  writer.reset();
  EXPECT_EQ(RunReader::open(file.path())->load().spanCount(), 15u);
}

TEST(WalFold, AFileWithoutWalIsAlreadyOneFile) {
  testing::TempRunFile file;
  RunWriter::create(file.path(), RunInfo{}).reset();
  EXPECT_FALSE(std::filesystem::exists(walOf(file.path())));
  EXPECT_TRUE(foldWal(file.path()));
}

}  // namespace
}  // namespace moescope::storage
