// OutputFile: outputs never destroy a user's file. Each rule of storage/output_file.h on a real folder:
// refused targets stay as they were, temporary files are unique and never outlive their owner, a
// replaced file changes only when its successor is complete, a second writer is refused.
#include "storage/output_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::set<std::string> names(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

void expectRefused(const OutputPath& o, bool force, const std::string& words,
                   OutputFile::Kind kind = OutputFile::Kind::Plain) {
  try {
    OutputFile::open(o, force, kind);
    ADD_FAILURE() << o.path << " accepted";
  } catch (const OutputRefused& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(o.option), std::string::npos) << e.what();
  }
}

TEST(OutputFile, ANewFileAppearsOnlyWhenCommitted) {
  testing::TempRunFile dir("out.json");
  const fs::path target = dir.path();
  auto file = OutputFile::open({"-o", target}, false);
  EXPECT_FALSE(fs::exists(target));
  EXPECT_NE(file->writePath(), target);
  EXPECT_EQ(file->writePath().parent_path(), target.parent_path());  // same folder: an atomic rename
  writeOutput(*file, [](std::ostream& out) { out << "whole"; });
  EXPECT_EQ(slurp(target), "whole");
  EXPECT_EQ(names(target.parent_path()), (std::set<std::string>{"out.json"}));
  const struct stat st = [&] {
    struct stat s {};
    ::stat(target.c_str(), &s);
    return s;
  }();
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);  // as open(2) would make it, not mkstemp's 0600
}

TEST(OutputFile, AnUncommittedFileLeavesNothing) {
  testing::TempRunFile dir("out.json");
  {
    auto file = OutputFile::open({"-o", dir.path()}, false);
    std::ofstream(file->writePath()) << "half";
  }
  EXPECT_TRUE(names(dir.path().parent_path()).empty());
  // A writer that throws halfway: nothing under the name, no temporary file.
  auto file = OutputFile::open({"-o", dir.path()}, false);
  EXPECT_THROW(writeOutput(*file,
                           [](std::ostream& out) {
                             out << "half";
                             throw StorageError("interrupted");
                           }),
               StorageError);
  EXPECT_TRUE(names(dir.path().parent_path()).empty());
}

TEST(OutputFile, TemporaryNamesAreUnique) {
  testing::TempRunFile dir("out.json");
  auto a = OutputFile::open({"-o", dir.path()}, false);
  auto b = OutputFile::open({"-o", dir.path()}, false);
  EXPECT_NE(a->writePath(), b->writePath());
}

TEST(OutputFile, AnExistingFileNeedsForceAndChangesOnlyWhenTheNewOneIsComplete) {
  testing::TempRunFile dir("out.json");
  std::ofstream(dir.path()) << "old";
  expectRefused({"-o", dir.path()}, false, "exists; give --force");
  EXPECT_EQ(slurp(dir.path()), "old");
  {
    auto file = OutputFile::open({"-o", dir.path()}, true);
    std::ofstream(file->writePath()) << "new, not committed";
    EXPECT_EQ(slurp(dir.path()), "old");
  }
  EXPECT_EQ(slurp(dir.path()), "old");
  auto file = OutputFile::open({"-o", dir.path()}, true);
  writeOutput(*file, [](std::ostream& out) { out << "new"; });
  EXPECT_EQ(slurp(dir.path()), "new");
}

TEST(OutputFile, FoldersLinksDevicesAndFifosAreNeverReplaced) {
  testing::TempRunFile dir("real.json");
  std::ofstream(dir.path()) << "real";
  const fs::path link = dir.sibling("link.json");
  fs::create_symlink(dir.path(), link);
  const fs::path fifo = dir.sibling("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expectRefused({"-o", link}, true, "symbolic link");
  expectRefused({"-o", fifo}, true, "not a regular file");
  expectRefused({"-o", "/dev/null"}, true, "not a regular file");
  expectRefused({"-o", dir.path().parent_path()}, true, "is a folder");
  expectRefused({"-o", dir.sibling("nowhere/out.json")}, true, "does not exist");
  expectRefused({"-o", ""}, true, "empty");
  expectRefused({"-o", "-"}, true, "standard output");
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_EQ(slurp(dir.path()), "real");
}

TEST(OutputFile, AFolderThatTakesNoNewFileIsRefusedAtOnce) {
  // /proc takes no new files, not even from root (a folder made read-only would not stop root).
  expectRefused({"--metrics", "/proc/moescope-metrics.jsonl"}, false, "no new file can be made");
}

TEST(OutputFile, OutputsAreNeverInputsNorEachOther) {
  testing::TempRunFile dir("config.toml");
  std::ofstream(dir.path()) << "[model]\n";
  const fs::path hardLink = dir.sibling("hard.toml");
  fs::create_hard_link(dir.path(), hardLink);
  const fs::path viaLink = dir.sibling("dirlink");
  fs::create_directory_symlink(dir.path().parent_path(), viaLink);
  const std::vector<fs::path> inputs{dir.path()};
  auto expectClash = [&](std::vector<OutputPath> outputs, const std::string& words) {
    try {
      checkOutputs(outputs, inputs);
      ADD_FAILURE() << "accepted";
    } catch (const OutputRefused& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expectClash({{"--out", dir.path()}}, "is one of the inputs");
  expectClash({{"--out", hardLink}}, "is one of the inputs");                 // the same inode
  expectClash({{"--out", viaLink / "config.toml"}}, "is one of the inputs");  // the same file resolved
  expectClash({{"--out", dir.sibling("x")}, {"--save", dir.sibling("./x")}}, "also the output of --out");
  EXPECT_NO_THROW(checkOutputs(
      std::vector<OutputPath>{{"--out", dir.sibling("a")}, {"--save", dir.sibling("b")}}, inputs));
}

// A run file watched while it grows: a new name is created at once (empty, locked) and written in
// place; a second writer of that name is refused while the first holds it.
TEST(OutputFile, ANewRunFileIsWrittenInPlaceAndLocked) {
  testing::TempRunFile dir("run.moescope");
  const OutputPath o{"--out", dir.path()};
  auto first = OutputFile::open(o, false, OutputFile::Kind::GrowingRunFile);
  EXPECT_TRUE(first->inPlace());
  EXPECT_TRUE(fs::exists(dir.path()));
  expectRefused(o, false, "exists", OutputFile::Kind::GrowingRunFile);
  std::ofstream(dir.path()) << "some pages";
  expectRefused(o, true, "being written by another process", OutputFile::Kind::GrowingRunFile);
  first.reset();  // the run ended: its file stays with what was written
  EXPECT_EQ(slurp(dir.path()), "some pages");
  auto second = OutputFile::open(o, true, OutputFile::Kind::GrowingRunFile);
  EXPECT_FALSE(second->inPlace());  // an existing run is replaced only once its successor is whole
}

TEST(OutputFile, ANewRunFileNothingWasWrittenToIsRemoved) {
  testing::TempRunFile dir("run.moescope");
  OutputFile::open({"--out", dir.path()}, false, OutputFile::Kind::GrowingRunFile).reset();
  EXPECT_FALSE(fs::exists(dir.path()));
}

// SQLite's side files: a stale -wal beside a new run file's name is removed before the run writes
// (SQLite would replay it), and a replaced run's are removed with it.
TEST(OutputFile, RunFilesTakeTheirSideFilesAlong) {
  testing::TempRunFile dir("run.moescope");
  std::ofstream(dir.path().string() + "-wal") << "stale";
  auto fresh = OutputFile::open({"--out", dir.path()}, false, OutputFile::Kind::GrowingRunFile);
  EXPECT_FALSE(fs::exists(dir.path().string() + "-wal"));
  std::ofstream(dir.path()) << "run";
  fresh.reset();
  auto replacement = OutputFile::open({"--out", dir.path()}, true, OutputFile::Kind::RunFile);
  std::ofstream(replacement->writePath()) << "new run";
  std::ofstream(replacement->writePath().string() + "-wal") << "its wal";
  std::ofstream(dir.path().string() + "-shm") << "old shm";
  replacement.reset();  // not committed: discarded, its lock on the old run released
  EXPECT_EQ(names(dir.path().parent_path()), (std::set<std::string>{"run.moescope", "run.moescope-shm"}));
  auto again = OutputFile::open({"--out", dir.path()}, true, OutputFile::Kind::RunFile);
  std::ofstream(again->writePath()) << "new run";
  again->commit();
  EXPECT_EQ(names(dir.path().parent_path()), (std::set<std::string>{"run.moescope"}));
  EXPECT_EQ(slurp(dir.path()), "new run");
}

// What a signal handler does: every temporary file still open goes, committed files stay.
TEST(OutputFile, RemoveTemporaryFilesTakesEveryOpenOne) {
  testing::TempRunFile dir("a.json");
  auto a = OutputFile::open({"-o", dir.path()}, false);
  auto b = OutputFile::open({"-o", dir.sibling("b.moescope")}, false, OutputFile::Kind::RunFile);
  std::ofstream(a->writePath()) << "a";
  std::ofstream(b->writePath()) << "b";
  std::ofstream(b->writePath().string() + "-wal") << "b's wal";
  auto c = OutputFile::open({"-o", dir.sibling("c.json")}, false);
  writeOutput(*c, [](std::ostream& out) { out << "c"; });
  removeTemporaryFiles();
  EXPECT_EQ(names(dir.path().parent_path()), (std::set<std::string>{"c.json"}));
}

TEST(SpaceReserve, HoldsItsBytesUntilReleased) {
  testing::TempRunFile dir("run.moescope");
  SpaceReserve reserve(dir.path(), 64 << 10);
  ASSERT_TRUE(reserve.held());
  const auto files = names(dir.path().parent_path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(fs::file_size(dir.sibling(*files.begin())), 64u << 10);
  reserve.release();
  EXPECT_TRUE(names(dir.path().parent_path()).empty());
}

}  // namespace
}  // namespace moescope::storage
