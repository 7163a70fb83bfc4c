// The times of a schedule's passes when each pass takes a given duration: every stage runs its list
// (schedule.h) in order, a pass starting once its stage is free and the passes it depends on have
// ended. Communication is free and a send never waits (the engine's pipeline sends are buffered), so
// this is the schedule's own timeline: the planner's simulation adds measured costs to it, and the
// tests check each schedule's bubble share against its formula with it.
#pragma once

#include <functional>
#include <vector>

#include "engine/schedule.h"

namespace moescope::engine {

struct TimedPass {
  int stage = 0;
  PipelineOp op;
  double start = 0, end = 0;
  bool operator==(const TimedPass&) const = default;
};

struct ScheduleTiming {
  std::vector<std::vector<TimedPass>> stages;  // per stage, in its order
  double makespan = 0;                         // the last pass's end; the first starts at 0
  // Per stage: the time it runs no pass within [0, makespan], over makespan.
  std::vector<double> bubble_share;
};

using PassDuration = std::function<double(int stage, const PipelineOp& op)>;

// The shape's schedule, each pass taking duration(stage, op) (>= 0).
ScheduleTiming timeSchedule(const PipelineShape& shape, const PassDuration& duration);
// Any orders of the shape's passes, one list per stage (an order to try before it is a schedule).
// Throws std::logic_error when the stages cannot all finish (orders that wait on each other).
ScheduleTiming timePasses(const PipelineShape& shape, const std::vector<std::vector<PipelineOp>>& orders,
                          const PassDuration& duration);

// Durations of a stage's whole layers: a chunk's pass takes 1/virtual_stages of them, a split backward
// input_share of backward for B and the rest for W.
struct PassCosts {
  double forward = 1, backward = 2, input_share = 0.5;
  double of(const PipelineShape& shape, const PipelineOp& op) const;
};

}  // namespace moescope::engine
