// Where the tests find a sample config: through the build, not the source tree's absolute path, so a
// build folder carried to another machine (the GPU server runs a prebuilt one) still finds them. In order:
// $MOESCOPE_SAMPLES_DIR; the build folder's samples/ (CMake copies samples/*.toml there), found from the
// test executable's own path (build/bin/...); samples/ under the working directory; the source tree the
// build was configured from.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace moescope::testing {

inline std::filesystem::path samplePath(const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const char* env = std::getenv("MOESCOPE_SAMPLES_DIR");
  const fs::path candidates[] = {env && *env ? fs::path(env) : fs::path(),
                                 ec ? fs::path() : exe.parent_path().parent_path() / "samples",
                                 fs::current_path(ec) / "samples", fs::path(MOESCOPE_SOURCE_DIR) / "samples"};
  for (const fs::path& dir : candidates) {
    if (!dir.empty() && fs::exists(dir / name, ec)) return dir / name;
  }
  return fs::path(MOESCOPE_SOURCE_DIR) / "samples" / name;  // missing everywhere: the error names this one
}

}  // namespace moescope::testing
