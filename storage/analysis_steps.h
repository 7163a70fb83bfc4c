// Steps: their extents, durations and throughput.
//
// A step's extent runs from the earliest start to the latest end of the spans tagged with that step,
// over all ranks and tracks of the run. It is taken from the spans rather than from StepMetric's
// start/end so that one definition serves host spans, GPU activity and imported traces (which have no
// step metrics), and so that every stage's bubble is measured against the same window.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "storage/activity.h"

namespace moescope::storage {

struct StepExtent {
  int32_t step = 0;
  int64_t start = 0, end = 0;
  int64_t duration() const { return end - start; }
  bool operator==(const StepExtent&) const = default;
};

// One extent per step that has spans, ascending by step; spans without a step are ignored.
std::vector<StepExtent> stepExtents(std::span<const RankActivity> ranks);

struct StepTime {
  int32_t step = 0;
  int64_t duration_ns = 0;  // the step's extent
  int64_t tokens = 0;       // StepMetric.tokens when the run recorded it, else RunInfo.tokens_per_step
  double tokens_per_s = 0;
  bool operator==(const StepTime&) const = default;
};

std::vector<StepTime> stepTimes(std::span<const StepExtent> extents, const RunInfo& run,
                                std::span<const StepMetric> metrics);

struct StepSummary {
  int32_t steps = 0;
  int64_t median_ns = 0;  // median step time (the lower middle for an even count)
  double mean_ns = 0;
  double tokens_per_s = 0;  // all tokens over all step time
  bool operator==(const StepSummary&) const = default;
};

StepSummary summarizeSteps(std::span<const StepTime> steps);

}  // namespace moescope::storage
