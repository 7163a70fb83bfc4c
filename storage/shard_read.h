// A multi-process run's shards read together into memory, without merging them into a file first: the
// same trace a load of the merged run gives (ids remapped, every shard's clock correction applied, the
// run marked failed when a process stopped), for reading a run whose merge has not happened (its
// processes were killed) and for a quick look. Each shard's tracks are moved over whole and only their
// names and times are rewritten, so the read costs about what loading the shards costs
// (docs/bench-storage.md).
#pragma once

#include <filesystem>
#include <vector>

#include "storage/shard_merge.h"
#include "storage/trace.h"

namespace moescope::storage {

// Throws StorageError as mergeShards does.
Trace loadShards(const std::vector<std::filesystem::path>& shards);

}  // namespace moescope::storage
