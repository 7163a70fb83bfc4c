// One recorded process (storage/record_stream.h) into one shard: an ordinary run file, with the meta
// keys of storage/shard_meta.h that say which shard of which run it is (`shard.index`, `shard.count`,
// `shard.run_id`) and its clock (`clock.offset_ns`, `clock.drift_ppb`, `clock.uncertainty_ns`,
// `clock.source`: every process of one host reads the same CLOCK_MONOTONIC, so "host" and 0/0/0). The
// shards of a run are merged by storage/shard_merge.h.
//
// The NVTX events become ranges (pushes and pops paired per thread and domain, starts and ends by id;
// a range still open at the end closes there and is counted), then go through the import's resolution
// (storage/import_resolve.h) as if they were a Kineto trace's annotations: names through the naming
// rules, nesting on a thread, steps and passes by time on any thread of the process, micro-batches of
// unnumbered passes from the schedule; launch calls tie each GPU record to the ranges around it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include "storage/import_layout.h"
#include "storage/record_stream.h"
#include "storage/rules.h"
#include "storage/trace_model.h"

namespace moescope::storage {

struct ShardIdentity {
  int32_t index = 0;  // shard-<index>.moescope; the rank where the launcher said one
  int32_t count = 0;  // the launcher's world size, else 0: the merge counts the shards found
  std::string run_id;
  int32_t rank = 0;  // the process's rank: its stage, tp and dp rank follow from the layout
  std::string command;
  bool operator==(const ShardIdentity&) const = default;
};

struct ShardWriteOptions {
  std::filesystem::path output;
  const RuleSet* rules = nullptr;  // required
  ParallelLayout layout;
  Schedule schedule = Schedule::OneFOneB;
  std::optional<std::pair<int32_t, int32_t>> steps;  // keep only steps A..B (inclusive), by the step rule
  ShardIdentity shard;
  RunStatus status = RunStatus::Complete;
  std::string error;
};

struct ShardSummary {
  int64_t ranges = 0, calls = 0, kernels = 0, memcpys = 0, memsets = 0;
  int64_t spans = 0;           // written
  int64_t linked = 0;          // GPU records tied to their launch call
  int64_t unlinked = 0;        // GPU records whose launch call was not seen
  int64_t unclosed = 0;        // ranges still open at the end, closed there
  int64_t unmatched_ends = 0;  // pops and ends with no open range
  int64_t left_out = 0;        // events outside --steps
  int32_t steps = 0, microbatches = 0;
  int32_t stage = 0;
  bool operator==(const ShardSummary&) const = default;
};

// The ranges of a stream, as (thread, start, end, name, domain), in the order they opened; counts what
// could not be paired.
struct RecordedRange {
  int64_t thread = 0;
  int64_t start = 0, end = 0;
  uint32_t name = 0;
  uint32_t domain = 0;
  bool operator==(const RecordedRange&) const = default;
};
std::vector<RecordedRange> pairRanges(const RecordStream& stream, int64_t& unclosed, int64_t& unmatchedEnds);

// Writes the shard (temporary file, renamed into place once whole). Throws StorageError.
ShardSummary writeRecordedShard(const RecordStream& stream, const ShardWriteOptions& options);

// Marks a merged run failed in place (the recorded command exited with a failure of its own, which no
// shard saw: a launcher's, or a process's exit status), its reason after any the merge already gave.
// Throws StorageError.
void markRunFailed(const std::filesystem::path& run, const std::string& reason);

// "A:B" -> {A, B} with 0 <= A <= B; nothing (and the problem in `error`) otherwise.
std::optional<std::pair<int32_t, int32_t>> parseStepRange(std::string_view text, std::string& error);

}  // namespace moescope::storage
