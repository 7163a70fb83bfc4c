// The per-step progress line `moescope-cli train` writes to stderr:
//   step 3/20  loss 5.4728 (ce 5.4625, aux 1.0260)  14689 tokens/s  34.9 ms  ETA 0:12
#pragma once

#include <QString>
#include <optional>

namespace moescope::ui {

struct StepProgress {
  int step = 0;   // 1-based, steps done
  int steps = 0;  // of the run
  double loss = 0;
  double tokensPerS = 0;
  double stepMs = 0;
  QString eta;  // as printed: "0:12" or "1:02:03"
  bool operator==(const StepProgress&) const = default;
};

// The step's numbers, or nullopt for any other line.
std::optional<StepProgress> parseProgressLine(const QString& line);

}  // namespace moescope::ui
