// Writes one run file: prepared statements, batched in transactions, WAL so that a reader can open
// the file while the run is still writing it. Not thread-safe: one thread (the tracer's flush
// thread, or a generator) owns a writer. Every failure throws StorageError naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>

#include "storage/storage_error.h"
#include "storage/trace_model.h"

namespace moescope::storage {

class RunWriter {
 public:
  // Creates the file (or empties one that exists) with its schema, and writes the run row with status
  // "running". Whether an existing file may be replaced is the caller's rule (OutputFile).
  static std::unique_ptr<RunWriter> create(const std::filesystem::path& path, const RunInfo& run);
  ~RunWriter();
  RunWriter(const RunWriter&) = delete;
  RunWriter& operator=(const RunWriter&) = delete;

  // Interns a name in the run's string table; the same text gives the same id.
  uint32_t intern(std::string_view text);

  void addRank(const RankInfo& rank);
  // Returns the track's id (dense, from 0, in the order added); track.id is ignored.
  int32_t addTrack(const TrackInfo& track);

  // Returns the id of the first span written; the others follow in order.
  int64_t addSpans(std::span<const SpanRecord> spans);
  void addGpuActivity(std::span<const GpuActivityRecord> records);
  void addCounters(std::span<const CounterSample> samples);
  void addStepMetric(const StepMetric& metric);
  // A routing group's row and its kept assignments per expert; a group written again replaces it.
  void addMoeRouting(std::span<const MoeRouting> groups);
  // Free-form run statistics, e.g. "cupti.dropped_records" = "0".
  void setMeta(std::string_view key, std::string_view value);

  // Updates the run row (name, config, ..., status, error, start, end).
  void updateRun(const RunInfo& run);
  void setStatus(RunStatus status, std::string_view error, int64_t end_ns);

  // Commits the open transaction so readers see everything written so far.
  void commit();
  // After a write failed (a full disk): gives up what was not committed (what was stays readable) and
  // frees the disk space held back since create(), so that the run's status can still be written.
  void recover();
  // Commits and builds the span table's (track, start) index (schema::finishSql), which a growing
  // file does without: inserting is then appends only. The destructor finishes a writer that was not.
  // Spans written after this still go into the index, row by row. A shard (a file whose run_meta
  // has shard.index, storage/shard_meta.h) is finished without it: its merge builds the index once.
  void finish();

 private:
  struct Impl;
  explicit RunWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moescope::storage
