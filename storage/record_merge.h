// Shards of one recorded run (storage/record_shard.h) into one run file: the interim merge of
// `moescope-cli record`, in the shape of the shard merge of the scale-out work (storage/shard_merge.h),
// which takes its place once it is in. Rows are copied table by table (SQLite ATTACH), with every id
// (strings, tracks, spans) moved past the previous shards'; steps are merged by step number (the
// earliest start, the latest end); the run is failed if any shard is. Every shard of a record run was
// written on one host's CLOCK_MONOTONIC (clock.source "host"), so no clock correction is applied; a
// shard that says otherwise is refused.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace moescope::storage {

struct RecordMergeReport {
  int32_t shards = 0;
  int64_t spans = 0, gpu_records = 0;
  std::vector<int32_t> ranks;
  bool failed = false;  // some shard was not complete
  std::vector<std::string> notes;
  bool operator==(const RecordMergeReport&) const = default;
};

// Writes `out` through a temporary file renamed into place. Throws StorageError (a shard that cannot
// be read, shards of different runs, two shards of one rank, a clock this merge cannot align).
RecordMergeReport mergeRecordedShards(const std::vector<std::filesystem::path>& shards,
                                      const std::filesystem::path& out,
                                      const std::function<void(int32_t done, int32_t total)>& progress = {});

// Sets a finished run's status and error text in place (the recorded command failed).
void markRunFailed(const std::filesystem::path& run, const std::string& error);

}  // namespace moescope::storage
