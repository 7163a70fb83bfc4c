// Where the time of some steps went, per rank and per stage: time by category, the bubble, and the
// step extent it is measured against; beside it the communication by kind and the overlap of those
// steps. What the breakdown view draws as stacked bars (one bar per rank, one per stage).
//
// A rank's category time is the union of its spans of that category in each chosen step, summed over
// the steps (analysis_busy.h); its bubble is the chosen steps' extent less the union of its spans but
// `wait` (analysis_bubbles.h). A stage's row is the mean over its ranks.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "storage/activity.h"
#include "storage/analysis_busy.h"
#include "storage/analysis_comm.h"
#include "storage/analysis_overlap.h"
#include "storage/analysis_steps.h"

namespace moescope::storage {

struct BreakdownRow {
  int32_t stage = 0;
  int32_t rank = kNone;  // kNone: the stage's mean over its ranks
  int32_t ranks = 1;     // ranks the row stands for
  CategoryTimes busy;    // ns by category, summed over the chosen steps
  int64_t bubble_ns = 0;
  int64_t extent_ns = 0;  // the chosen steps' extents, summed
  bool operator==(const BreakdownRow&) const = default;
};

struct Breakdown {
  std::vector<int32_t> steps;        // the steps measured, ascending
  std::vector<BreakdownRow> stages;  // by stage
  std::vector<BreakdownRow> ranks;   // by (stage, rank)
  std::vector<CommStats> communication;
  OverlapStats overlap;  // the whole run, over the chosen steps
  bool operator==(const Breakdown&) const = default;
};

// The steps whose extent intersects [t0, t1), ascending.
std::vector<int32_t> stepsIntersecting(std::span<const StepExtent> extents, int64_t t0, int64_t t1);

// The breakdown of the given steps (every step with spans when steps is empty).
Breakdown breakdownOfSteps(std::span<const RankActivity> ranks, std::span<const int32_t> steps);

}  // namespace moescope::storage
