// A run's progress as its run file tells it: the steps in step_metric so far (the file the GUI
// already reads for the timeline), against the run's step count. No text from the CLI is read.
#pragma once

#include <QString>
#include <cstdint>
#include <optional>
#include <vector>

#include "storage/trace_model.h"

namespace moescope::ui {

struct StepProgress {
  int step = 0;   // steps done
  int steps = 0;  // of the run
  double loss = 0;
  double tokensPerS = 0;
  double stepMs = 0;
  QString eta;                  // "0:12" or "1:02:03"
  int64_t peakMemoryBytes = 0;  // the device memory peak so far (StepMetric), 0: not counted
  bool operator==(const StepProgress&) const = default;
};

// The last step's numbers and the time left at the mean step time of the steps after the first (the
// warm-up); nullopt before the first step is written.
std::optional<StepProgress> progressOf(const std::vector<storage::StepMetric>& steps, int totalSteps);

// Seconds as "m:ss" or "h:mm:ss".
QString formatEta(double seconds);

}  // namespace moescope::ui
