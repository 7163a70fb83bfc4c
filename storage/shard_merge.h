// One run file from the shards of a run recorded by several processes (storage/shard_meta.h): every
// shard's ranks, tracks, spans, GPU records and counters, with ids remapped (tracks, names, span ids
// that GPU records point at) and each shard's times moved onto rank 0's clock by its clock correction.
// The output is written under a temporary name beside the final one and renamed when whole. A shard
// that did not finish (its process was killed or failed: status running or failed) keeps what it
// recorded, and the merged run is marked failed, naming the processes that stopped; a shard missing
// from the list is named the same way.
//
// Shards are copied table to table inside SQLite (ATTACH, INSERT ... SELECT), so rows never pass
// through C++ objects and span ids keep their order (GPU records point at them). It still writes every
// span again: 4 shards of 10M spans merge in 2.7x the time one file of them loads; reading the shards
// together (storage/shard_read.h) takes 1.0x (docs/bench-storage.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "storage/shard_meta.h"
#include "storage/storage_error.h"
#include "storage/trace_model.h"

namespace moescope::storage {

// What one shard says about itself (its run_meta and run row), read before anything is merged.
struct ShardInfo {
  std::filesystem::path file;
  int32_t index = 0, count = 0;  // count 0: not known to the process (no launcher's world size)
  std::string run_id;
  RunStatus status = RunStatus::Running;
  std::string error;
  std::vector<int32_t> ranks;  // the global ranks its rank table holds
  ClockCorrection clock;
  bool operator==(const ShardInfo&) const = default;
};

struct MergeReport {
  int32_t shards = 0;     // merged
  int32_t processes = 0;  // shard.count; the shards merged where every shard says 0
  int64_t spans = 0, gpu_records = 0, counters = 0;
  RunStatus status = RunStatus::Complete;
  std::string error;             // the merged run's error text ("" when complete)
  std::vector<int32_t> stopped;  // shard indices that did not finish (running, failed, cancelled)
  std::vector<int32_t> missing;  // shard indices of 0..count-1 not given
  bool operator==(const MergeReport&) const = default;
};

// Called after each shard is copied: shards copied so far, of how many.
using MergeProgress = std::function<void(int32_t done, int32_t total)>;

// Reads a shard's keys and run row. Throws StorageError (one line naming the file) when it is not a
// run file or not a shard.
ShardInfo readShardInfo(const std::filesystem::path& shard);

// Reads every shard's keys and checks that they belong together (one run id and count, no index or
// rank twice); returns them by index. Throws StorageError naming the shard that does not fit.
std::vector<ShardInfo> readShards(const std::vector<std::filesystem::path>& shards);
// What a merge of these shards reports (status, error, the processes that stopped or are missing),
// before anything is copied.
MergeReport summarizeShards(const std::vector<ShardInfo>& shards);

// The shard files of a folder (shard-<index>.moescope), by index. Throws StorageError when the folder
// does not exist or holds none.
std::vector<std::filesystem::path> listShards(const std::filesystem::path& folder);

// Merges the shards into `out` (replaced once the merge is whole). Throws StorageError when a shard
// is unreadable, when shards belong to different runs, disagree on their count, or repeat an index;
// the output is then left as it was.
MergeReport mergeShards(const std::vector<std::filesystem::path>& shards, const std::filesystem::path& out,
                        const MergeProgress& progress = {});

}  // namespace moescope::storage
