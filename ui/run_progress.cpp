#include "ui/run_progress.h"

#include <QRegularExpression>

namespace moescope::ui {

std::optional<StepProgress> parseProgressLine(const QString& line) {
  static const QRegularExpression re(QStringLiteral(
      R"(^step (\d+)/(\d+)\s+loss (\S+)\s.*?\s(\S+) tokens/s\s+(\S+) ms\s+ETA (\d+(?::\d\d)+)\s*$)"));
  const auto m = re.match(line);
  if (!m.hasMatch()) return std::nullopt;
  StepProgress p;
  bool ok[5] = {};
  p.step = m.captured(1).toInt(&ok[0]);
  p.steps = m.captured(2).toInt(&ok[1]);
  p.loss = m.captured(3).toDouble(&ok[2]);
  p.tokensPerS = m.captured(4).toDouble(&ok[3]);
  p.stepMs = m.captured(5).toDouble(&ok[4]);
  p.eta = m.captured(6);
  // A loss of nan or inf is still progress; the other numbers must read.
  if (!ok[0] || !ok[1] || !ok[3] || !ok[4]) return std::nullopt;
  if (!ok[2]) p.loss = qQNaN();
  return p;
}

}  // namespace moescope::ui
