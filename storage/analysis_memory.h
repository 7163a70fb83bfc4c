// Peak activation memory: each rank records, per step, the bytes of saved activations it held at the
// step's worst moment (a counter track named kPeakActivationCounter); a stage's peak is the largest
// sample of any of its ranks in any step. What a schedule costs in memory, beside its bubble.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/trace.h"

namespace moescope::storage {

struct StagePeakActivation {
  int32_t stage = 0;
  int64_t bytes = 0;
  bool operator==(const StagePeakActivation&) const = default;
};

// Sorted by stage; stages whose ranks recorded no such counter are left out. A rank the rank table does
// not list counts as stage 0 (as in activity.h).
std::vector<StagePeakActivation> peakActivationPerStage(const Trace& trace);

// The largest over every stage; 0 when none was recorded.
int64_t peakActivation(const Trace& trace);

}  // namespace moescope::storage
