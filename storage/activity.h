// What the analysis reads: each rank's timed activities, from one source. Today the source is the
// host spans (the time the engine's threads spent in each phase); the GPU tracer's kernels will give a
// second source with the same shape, so every analysis runs unchanged on GPU time.
//
// Spans of one pipeline stage come from several ranks (its tensor- and data-parallel ranks). The
// analysis works per rank first and then aggregates the ranks of a stage (see each function).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "storage/trace.h"

namespace moescope::storage {

struct Activity {
  int64_t start = 0, end = 0;
  Category category = Category::ComputeAttention;
  int32_t step = kNone;
  int64_t bytes = 0;
  bool operator==(const Activity&) const = default;
};

struct RankActivity {
  int32_t rank = 0;
  int32_t stage = 0;            // from the run's rank table; 0 for a rank the table does not list
  std::vector<Activity> items;  // all tracks of the rank together, sorted by start
  bool operator==(const RankActivity&) const = default;
};

// The spans of every host-thread track, grouped by rank, ranks in ascending order. Only completed steps
// count: a run that lists its completed steps (kMetaStepsRecorded) leaves out the spans of any other
// step, the one a stop cut short (spans without a step stay).
std::vector<RankActivity> hostActivity(const Trace& trace);

// Whether a span of `step` belongs to a completed step (see hostActivity); kNone is always kept.
class CompletedSteps {
 public:
  explicit CompletedSteps(const Trace& trace);
  bool counts(int32_t step) const;

 private:
  bool listed_ = false;         // the run lists its completed steps in trace.steps
  std::vector<int32_t> steps_;  // sorted
};

}  // namespace moescope::storage
