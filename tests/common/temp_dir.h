// Temporary folders and files for the test suites: one helper, so that every test gets a folder of its
// own (tests run in parallel under ctest -j) and leaves nothing behind.
#pragma once

#include <filesystem>
#include <string>

namespace moescope::testing {

// A fresh, empty folder under the system's temporary folder, removed with all it holds on destruction.
// Its name carries the running GoogleTest test (suite and name, where one runs) and the tag, and a
// unique suffix from mkdtemp, so no two tests or processes share one.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / name; nothing is created.
  std::filesystem::path file(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A run-file path in a TempDir of its own: the file and its -wal and -shm go with the folder.
class TempRunFile {
 public:
  explicit TempRunFile(const std::string& name = "run.moescope") : path_(dir_.file(name)) {}
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path sibling(const std::string& name) const { return dir_.file(name); }

 private:
  TempDir dir_;
  std::filesystem::path path_;
};

}  // namespace moescope::testing
