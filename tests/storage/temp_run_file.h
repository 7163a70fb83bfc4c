// A run-file path in a fresh temporary folder, removed (with its -wal and -shm) when the test ends.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace moescope::testing {

class TempRunFile {
 public:
  explicit TempRunFile(const std::string& name = "run.moescope") {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() / ("moescope-test-" + std::string(info->test_suite_name()) +
                                                     "-" + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = dir_ / name;
  }
  ~TempRunFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path sibling(const std::string& name) const { return dir_ / name; }

 private:
  std::filesystem::path dir_, path_;
};

}  // namespace moescope::testing
