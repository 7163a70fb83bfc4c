// Reads a run file. Opening checks that it is SQLite, that it is a moescope file of a version this
// build knows (older versions are migrated in memory, newer ones refused), and that its tables are all
// there; each failure throws StorageError with one line naming the file and the problem.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "storage/storage_error.h"
#include "storage/trace.h"

namespace moescope::storage {

class RunReader {
 public:
  static std::unique_ptr<RunReader> open(const std::filesystem::path& path);
  ~RunReader();
  RunReader(const RunReader&) = delete;
  RunReader& operator=(const RunReader&) = delete;

  RunInfo run() const;
  // The step metrics written so far, by step: a running run's progress, read without its spans.
  std::vector<StepMetric> steps() const;
  // Loads everything into memory. A run with at least parallelFromRows spans is read by two
  // connections at once, the lower and the upper half of the span ids (two cores, half the time).
  static constexpr int64_t kParallelLoadRows = 1 << 20;
  Trace load(int64_t parallelFromRows = kParallelLoadRows) const;
  // Loads only the spans, GPU records and counters that intersect [t0, t1); everything else whole.
  Trace loadWindow(int64_t t0, int64_t t1) const;
  // Rows added since the last call (for a run that is still being written), appended to a trace
  // that load() returned, tracks kept sorted; the run row, ranks, steps and meta are read again.
  // Returns true if anything was new.
  bool refresh(Trace& trace) const;

 private:
  struct Impl;
  explicit RunReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moescope::storage
