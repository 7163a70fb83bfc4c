// What the planner throws when it is asked for something it cannot predict: a target configuration
// the model cannot express (tp that does not divide the heads, more stages than layers, ...), or a
// calibration run that lacks what the prediction needs. One line naming the problem; the CLI prints it
// and exits 2.
#pragma once

#include <stdexcept>

namespace moescope::planner {

struct PlanError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace moescope::planner
