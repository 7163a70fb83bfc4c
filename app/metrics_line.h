// One step's line of `moescope-cli train --metrics` (JSON Lines): step, loss, ce_loss, aux_loss, tokens,
// step_ms, tokens_per_s, grad_norm, and peak_memory_bytes on every line of a run whose backend counts its
// device memory (CUDA: StepReport::peak_memory_bytes, the most one rank's device held since the run
// started), absent on every line of one that does not (the CPU): a reader tells "not counted" from a
// count without a sentinel.
#pragma once

#include <string>

#include "engine/trainer.h"

namespace moescope::app {

// One JSON object and a newline (a NaN loss is written as null, valid JSON).
std::string metricsLine(const engine::StepReport& report);

}  // namespace moescope::app
