// Micro-batches rebuilt from the schedule, for programs whose range names carry none (Megatron's
// forward_step and backward_step): given the passes one pipeline stage ran in one step, in the order it
// ran them, the micro-batch of each.
//
// Under GPipe and 1F1B a stage runs its micro-batches' forwards in micro-batch order and their
// backwards in micro-batch order; the schedule only decides how the two interleave (1F1B: the stage's
// warm-up forwards, then one forward and one backward in turn). So the k-th forward and the k-th
// backward of a step are micro-batch k, and no pass order needs to be assumed; ZB-H1's weight passes
// (phase backward_weight) too. Interleaved 1F1B reorders micro-batches by chunk (engine/schedule.h), which
// names do not carry: its passes are left unnumbered.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "storage/trace_model.h"

namespace moescope::storage {

// One entry per pass: its micro-batch, or kNone for a pass that is neither forward nor backward.
std::vector<int32_t> microbatchesOfPasses(Schedule schedule, int32_t stages, int32_t stage,
                                          std::span<const Phase> passes);

}  // namespace moescope::storage
