// Pieces the moescope-cli commands share: loading a run file with the one-line error and exit code 2
// for bad input, and the --force option every command that writes a file takes.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>

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

inline void addForceFlag(CLI::App* cmd, bool& force) {
  cmd->add_flag("--force", force,
                "Replace an output file that exists (the old file stays until the new one is complete)");
}

}  // namespace moescope::app
