// Compute-communication overlap as Holistic Trace Analysis defines it: on a rank, the time where its
// merged communication intervals and its merged computation intervals intersect, over its merged
// communication time. Computation is compute.*, moe.* and optimizer; `wait` is neither. A stage (or
// the run) adds up its ranks' times before dividing, so the ratio is weighted by communication time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "storage/activity.h"

namespace moescope::storage {

struct OverlapStats {
  int32_t stage = kNone;   // kNone: the whole run
  int64_t comm_ns = 0;     // merged communication time, summed over ranks
  int64_t compute_ns = 0;  // merged computation time, summed over ranks
  int64_t overlap_ns = 0;  // their intersection, summed over ranks
  double ratio = 0;        // overlap_ns / comm_ns (0 without communication)
  bool operator==(const OverlapStats&) const = default;
};

// One entry per stage, ascending.
std::vector<OverlapStats> overlapByStage(std::span<const RankActivity> ranks);
// The whole run.
OverlapStats overlapOfRun(std::span<const RankActivity> ranks);

}  // namespace moescope::storage
