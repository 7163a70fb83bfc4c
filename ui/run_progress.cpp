#include "ui/run_progress.h"

#include <algorithm>
#include <cmath>

namespace moescope::ui {

QString formatEta(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, std::round(seconds)));
  if (s >= 3600)
    return QStringLiteral("%1:%2:%3")
        .arg(s / 3600)
        .arg(s / 60 % 60, 2, 10, QLatin1Char('0'))
        .arg(s % 60, 2, 10, QLatin1Char('0'));
  return QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
}

std::optional<StepProgress> progressOf(const std::vector<storage::StepMetric>& steps, int totalSteps) {
  if (steps.empty()) return std::nullopt;
  const storage::StepMetric& last = steps.back();
  StepProgress p;
  p.step = static_cast<int>(steps.size());
  p.steps = std::max(totalSteps, p.step);
  p.loss = last.loss;
  p.tokensPerS = last.tokens_per_s;
  p.stepMs = last.step_ms;
  p.peakMemoryBytes = last.peak_memory_bytes;
  double sum = 0;
  size_t n = 0;
  for (size_t i = steps.size() > 1 ? 1 : 0; i < steps.size(); ++i, ++n) sum += steps[i].step_ms;
  const double meanMs = n > 0 ? sum / static_cast<double>(n) : 0.0;
  p.eta = formatEta(meanMs * (p.steps - p.step) / 1000.0);
  return p;
}

}  // namespace moescope::ui
