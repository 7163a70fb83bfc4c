// Pieces the moescope-cli commands share: loading a run file with the one-line error and exit code 2
// for bad input, and the --force option every command that writes a file takes.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>

#include "storage/run_reader.h"

namespace moescope::app {

// Loads a whole run; on a bad file prints "moescope-cli <command>: <problem>" and returns nothing.
inline std::optional<storage::Trace> loadRun(const std::string& path, const char* command) {
  try {
    return storage::RunReader::open(path)->load();
  } catch (const storage::StorageError& e) {
    std::fprintf(stderr, "moescope-cli %s: %s\n", command, e.what());
    return std::nullopt;
  }
}

inline void addForceFlag(CLI::App* cmd, bool& force) {
  cmd->add_flag("--force", force,
                "Replace an output file that exists (the old file stays until the new one is complete)");
}

}  // namespace moescope::app
