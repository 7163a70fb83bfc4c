#include "ui/run_panel.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QProgressBar>
#include <QPushButton>
#include <cmath>

#include "ui/span_fields.h"

namespace moescope::ui {

RunPanel::RunPanel(QWidget* parent, const QString& cli) : QWidget(parent) {
  launcher_ = new RunLauncher(this, cli);
  bar_ = new QProgressBar(this);
  bar_->setMaximumWidth(220);
  bar_->setTextVisible(true);
  label_ = new QLabel(this);
  label_->setObjectName(QStringLiteral("runLabel"));
  cancel_ = new QPushButton(tr("Cancel run"), this);
  cancel_->setEnabled(false);
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(label_, 1);
  layout->addWidget(bar_);
  layout->addWidget(cancel_);

  connect(cancel_, &QPushButton::clicked, launcher_, &RunLauncher::cancel);
  connect(launcher_, &RunLauncher::progress, this, &RunPanel::showProgress);
  connect(launcher_, &RunLauncher::finished, this, &RunPanel::showFinished);
}

bool RunPanel::start(const RunSettings& settings) {
  if (!launcher_->start(settings)) return false;
  bar_->setRange(0, 0);  // busy until the first step
  label_->setStyleSheet({});
  label_->setToolTip(settings.out);
  label_->setText(tr("%1: starting (%2, %3 backend)")
                      .arg(QFileInfo(settings.out).fileName(),
                           settings.text(QStringLiteral("parallel.layout"), tr("default layout")),
                           settings.backend));
  cancel_->setEnabled(true);
  return true;
}

void RunPanel::showProgress(const StepProgress& p) {
  bar_->setRange(0, p.steps);
  bar_->setValue(p.step);
  bar_->setFormat(QStringLiteral("%v / %m"));
  const QString loss = std::isfinite(p.loss) ? QLocale().toString(p.loss, 'f', 4) : QStringLiteral("nan");
  const QString memory = p.peakMemoryBytes > 0
                             ? tr(" · peak %1").arg(QString::fromStdString(formatBytes(p.peakMemoryBytes)))
                             : QString();
  label_->setText(tr("%1: step %2/%3 · loss %4 · %5 tokens/s%6 · ETA %7")
                      .arg(QFileInfo(launcher_->settings().out).fileName())
                      .arg(p.step)
                      .arg(p.steps)
                      .arg(loss, QLocale().toString(p.tokensPerS, 'f', 0), memory, p.eta));
}

void RunPanel::showFinished(RunLauncher::Outcome outcome, const QString& message) {
  cancel_->setEnabled(false);
  bar_->setRange(0, std::max(1, launcher_->lastProgress().steps));
  bar_->setValue(launcher_->lastProgress().step);
  const QString name = QFileInfo(launcher_->settings().out).fileName();
  switch (outcome) {
    case RunLauncher::Outcome::Complete:
      label_->setText(tr("%1: complete").arg(name));
      break;
    case RunLauncher::Outcome::Cancelled:
      label_->setText(tr("%1: cancelled").arg(name));
      break;
    case RunLauncher::Outcome::Rejected:
    case RunLauncher::Outcome::Failed:
    case RunLauncher::Outcome::None:
      label_->setStyleSheet(QStringLiteral("color: #b00020;"));
      label_->setText(tr("%1: failed: %2").arg(name, message));
      label_->setToolTip(message);
      break;
  }
}

QString RunPanel::text() const {
  return label_->text();
}

}  // namespace moescope::ui
