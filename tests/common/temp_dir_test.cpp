#include "tests/common/temp_dir.h"

#include <gtest/gtest.h>

#include <fstream>

namespace moescope::testing {
namespace {

namespace fs = std::filesystem;

TEST(TempDir, IsAFreshEmptyFolderNamedForTheTest) {
  TempDir dir("tag");
  ASSERT_TRUE(fs::is_directory(dir.path()));
  EXPECT_TRUE(fs::is_empty(dir.path()));
  const std::string name = dir.path().filename().string();
  EXPECT_NE(name.find("TempDir-IsAFreshEmptyFolderNamedForTheTest-tag-"), std::string::npos) << name;
  EXPECT_EQ(dir.file("a.txt"), dir.path() / "a.txt");
  EXPECT_FALSE(fs::exists(dir.file("a.txt")));
}

TEST(TempDir, TwoInOneTestAreDifferentFolders) {
  TempDir a, b;
  EXPECT_NE(a.path(), b.path());
}

TEST(TempDir, GoesWithEverythingInIt) {
  fs::path kept;
  {
    TempDir dir;
    kept = dir.path();
    fs::create_directories(dir.file("sub"));
    std::ofstream(dir.file("sub/x.txt")) << "x";
  }
  EXPECT_FALSE(fs::exists(kept));
}

TEST(TempRunFile, IsARunFilePathInAFolderOfItsOwn) {
  fs::path folder;
  {
    TempRunFile file;
    EXPECT_EQ(file.path().filename(), "run.moescope");
    folder = file.path().parent_path();
    EXPECT_TRUE(fs::is_directory(folder));
    EXPECT_EQ(file.sibling("run.moescope-wal"), folder / "run.moescope-wal");
    std::ofstream(file.sibling("run.moescope-wal")) << "wal";
  }
  EXPECT_FALSE(fs::exists(folder));
}

}  // namespace
}  // namespace moescope::testing
