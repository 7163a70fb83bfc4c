// The fuzzer's cases: a mutated input file of one kind (a run file, a run config, a .npy token array,
// a safetensors checkpoint, a PyTorch profiler trace) written into a folder, and the moescope-cli
// command that reads it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "mutator.h"

namespace moescope::fuzz {

// Good inputs the mutations start from, made by the moescope-cli under test in `dir`.
struct Seeds {
  std::filesystem::path dir;
  std::filesystem::path run;          // a real (trained) run file with step metrics and counters
  std::filesystem::path config;       // the tiny config that run used
  std::filesystem::path npy;          // tokens as a .npy array of uint16
  std::filesystem::path safetensors;  // the run's checkpoint
  std::filesystem::path kineto[2];    // a two-stage pipeline's PyTorch profiler traces (tests/storage/kineto)
};

struct Case {
  std::string kind;  // "run file", "config", "npy", "safetensors", "kineto"
  std::string what;  // the mutations, for the report
  std::vector<std::string> args;
  bool stdoutIsJson = false;  // on exit 0, stdout must parse as strict JSON
  std::string jsonFile;       // on exit 0, this file (in the case folder) must parse as strict JSON
  std::string csvFile;        // on exit 0, this file must hold no NUL byte
};

// One case of each kind, written into `dir` (empty, the command's working folder).
Case runFileCase(Mutator& m, const Seeds& seeds, const std::filesystem::path& dir);
Case configCase(Mutator& m, const Seeds& seeds, const std::filesystem::path& dir);
Case npyCase(Mutator& m, const Seeds& seeds, const std::filesystem::path& dir);
Case safetensorsCase(Mutator& m, const Seeds& seeds, const std::filesystem::path& dir);
Case kinetoCase(Mutator& m, const Seeds& seeds, const std::filesystem::path& dir);

}  // namespace moescope::fuzz
