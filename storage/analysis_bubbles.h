// Pipeline bubbles (DESIGN.md): on a stage, within one step, the time not covered by any span other
// than `wait`. Measured per rank against the step's extent (analysis_steps.h), then a stage reports
// the mean over its ranks and the worst rank. Beside it, the schedule's theoretical share with p stages
// of equal cost, m micro-batches, free communication and a backward twice a forward (docs/SCHEDULES.md
// derives each): (p - 1) / (m + p - 1) for GPipe and 1F1B, (p - 1) / (v m + p - 1) for interleaved
// 1F1B with v virtual stages, (p - 1) / (3 m + p - 1) for ZB-H1 (B and W a forward each).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "storage/activity.h"
#include "storage/analysis_steps.h"

namespace moescope::storage {

double theoreticalBubbleShare(Schedule schedule, int32_t stages, int32_t microbatches,
                              int32_t virtual_stages = 1);
double theoreticalBubbleShare(const RunInfo& run);

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
