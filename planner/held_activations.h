// How many layers' worth of micro-batch activations a stage holds at its schedule's worst moment: a
// forward through a chunk holds the chunk's layers until the chunk's backward (or, with a split
// backward, its weight pass) releases them. The planner's activation memory is this count times the
// bytes per token and layer the calibration run's counter gave.
#pragma once

#include <cstdint>

#include "planner/plan_target.h"

namespace moescope::planner {

int64_t peakHeldLayers(const PlanTarget& target, int64_t layers, int stage);

}  // namespace moescope::planner
