// Where the tests find the programs they run (moescope-cli, moescope, helpers): beside the test
// executable itself (build/bin/), so a build folder carried to another machine (the GPU server runs a
// prebuilt one under another path) runs its own programs; else the build folder it was configured in.
#pragma once

#include <filesystem>
#include <string>

namespace moescope::testing {

inline std::filesystem::path binaryPath(const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(exe.parent_path() / name, ec)) return exe.parent_path() / name;
  return fs::path(MOESCOPE_BINARY_DIR) / "bin" / name;
}

}  // namespace moescope::testing
