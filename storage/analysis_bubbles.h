// Pipeline bubbles (DESIGN.md): on a stage, within one step, the time not covered by any span other
// than `wait`. Measured per rank against the step's extent (analysis_steps.h), then a stage reports
// the mean over its ranks and the worst rank. Beside it, the schedule's theoretical share
// (p - 1) / (m + p - 1) for GPipe and 1F1B with p stages and m micro-batches.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "storage/activity.h"
#include "storage/analysis_steps.h"

namespace moescope::storage {

double theoreticalBubbleShare(int32_t stages, int32_t microbatches);

struct StageStepBubble {
  int32_t stage = 0;
  int32_t step = 0;
  int32_t ranks = 0;
  int64_t extent_ns = 0;      // the step's extent, the same for every stage
  int64_t bubble_ns = 0;      // mean over the stage's ranks
  int64_t max_bubble_ns = 0;  // the stage's worst rank
  double share = 0;           // bubble_ns / extent_ns
  double theoretical_share = 0;
  bool operator==(const StageStepBubble&) const = default;
};

// Sorted by (stage, step); steps are those with spans. A rank with no span in a step idles through it.
std::vector<StageStepBubble> bubbles(std::span<const RankActivity> ranks, const RunInfo& run);

// Per stage over all steps (step = kNone): extent, bubble and worst-rank bubble summed over the steps,
// share = bubble / extent.
std::vector<StageStepBubble> bubblesPerStage(std::span<const StageStepBubble> perStep);

}  // namespace moescope::storage
