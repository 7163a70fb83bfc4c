#include "tests/common/temp_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cctype>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace moescope::testing {
namespace {

// Letters, digits, '-' and '_' only: parameterized test names hold '/'.
std::string safeName(const std::string& text) {
  std::string out;
  for (const char c : text) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  return out;
}

}  // namespace

TempDir::TempDir(const std::string& tag) {
  std::string name = "moescope-test";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info())
    name.append("-").append(safeName(info->test_suite_name())).append("-").append(safeName(info->name()));
  if (!tag.empty()) name.append("-").append(safeName(tag));
  const std::string pattern = (std::filesystem::temp_directory_path() / (name + "-XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data()))
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace moescope::testing
