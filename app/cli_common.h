// Pieces the moescope-cli commands share: loading a run file with the one-line error and exit code 2
// for bad input, and writing an output file whole or not at all.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <system_error>

#include "storage/run_reader.h"
#include "storage/shard_read.h"

namespace moescope::app {

// Loads a whole run; on a bad file prints "moescope-cli <command>: <problem>" and returns nothing.
inline std::optional<storage::Trace> loadRun(const std::string& path, const char* command) {
  try {
    // A folder of shards (RUN.moescope.shards) is read as the run it holds, merged in memory.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return storage::loadShards(storage::listShards(path));
    return storage::RunReader::open(path)->load();
  } catch (const storage::StorageError& e) {
    std::error_code ec;
    const std::string shards = path + ".shards";
    if (!std::filesystem::exists(path, ec) && std::filesystem::is_directory(shards, ec)) {
      // A multi-process run that stopped before process 0 merged it: say how to get the one file.
      std::fprintf(
          stderr,
          "moescope-cli %s: %s: no such file, but its shards are there: read them with moescope-cli %s %s, "
          "or merge them with moescope-cli merge %s -o %s\n",
          command, path.c_str(), command, shards.c_str(), shards.c_str(), path.c_str());
    } else {
      std::fprintf(stderr, "moescope-cli %s: %s\n", command, e.what());
    }
    return std::nullopt;
  }
}

// Writes `path` through `write` into a temporary file beside it and renames it into place once the
// stream is good, so a failed or interrupted write never leaves a partial file under the real name.
// Returns false (and has printed why) on failure.
inline bool writeWhole(const std::string& path, const char* command,
                       const std::function<void(std::ostream&)>& write) {
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      std::fprintf(stderr, "moescope-cli %s: %s: cannot write\n", command, path.c_str());
      return false;
    }
    write(out);
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      std::fprintf(stderr, "moescope-cli %s: %s: write failed\n", command, path.c_str());
      return false;
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::filesystem::remove(temporary, ec);
    std::fprintf(stderr, "moescope-cli %s: %s: cannot move into place\n", command, path.c_str());
    return false;
  }
  return true;
}

}  // namespace moescope::app
