// Writes a prediction as a run file: the same tables a measured run has, marked predicted (run_meta
// `run.predicted` = 1 and `run.calibration`, the measured run's path), so it opens in every view and
// no view mistakes it for a measurement. Written beside its final name and renamed into place, so a
// failed write never leaves a partial file under that name.
#pragma once

#include <filesystem>

#include "planner/simulate.h"

namespace moescope::planner {

// Throws storage::StorageError (naming the file) when it cannot be written.
void writePrediction(const Prediction& prediction, const std::filesystem::path& path);

}  // namespace moescope::planner
