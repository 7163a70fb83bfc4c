// Grouping helpers shared by the analysis functions (internal to storage/).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "storage/activity.h"

namespace moescope::storage {

// A rank's activities by step (kNone included), each group in start order.
std::map<int32_t, std::vector<const Activity*>> groupByStep(const RankActivity& rank);

// Number of ranks in each stage.
std::map<int32_t, int32_t> countRanksPerStage(std::span<const RankActivity> ranks);

}  // namespace moescope::storage
