// Busy time by category, per pipeline stage and step.
//
// On one rank, a category's busy time in a step is the length of the union of that category's spans
// tagged with the step (nested or overlapping spans of one category count once). A stage's value is
// the mean over its ranks (its tensor- and data-parallel ranks), so a stage row reads like one
// representative rank; categories may overlap one another (communication beside computation), so
// their sum may exceed the wall time.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "storage/activity.h"

namespace moescope::storage {

struct CategoryTimes {
  std::array<int64_t, kCategoryCount> ns{};
  int64_t& operator[](Category c) { return ns[static_cast<size_t>(c)]; }
  int64_t operator[](Category c) const { return ns[static_cast<size_t>(c)]; }
  bool operator==(const CategoryTimes&) const = default;
};

struct StageStepBusy {
  int32_t stage = 0;
  int32_t step = kNone;  // kNone: the spans that carry no step
  int32_t ranks = 0;     // ranks of the stage
  CategoryTimes busy;    // mean over the ranks, ns
  int64_t busy_ns = 0;   // union of all spans but `wait`, mean over the ranks
  bool operator==(const StageStepBusy&) const = default;
};

// Sorted by (stage, step).
std::vector<StageStepBusy> busyByStageStep(std::span<const RankActivity> ranks);

}  // namespace moescope::storage
