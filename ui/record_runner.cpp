#include "ui/record_runner.h"

#include <QFileInfo>

namespace moescope::ui {

RecordRunner::RecordRunner(QObject* parent, const QString& cli) : QObject(parent) {
  process_ = new CliProcess(cli, QStringLiteral("moescope: "), CliProcess::Stop::Group, this);
  connect(process_, &CliProcess::line, this, [this](const QString& text, QProcess::ProcessChannel channel) {
    emit output(text, channel == QProcess::StandardError);
  });
  connect(process_, &CliProcess::finished, this, &RecordRunner::onFinished);
  connect(process_, &CliProcess::failedToStart, this, [this](const QString& message) {
    outcome_ = Outcome::Failed;
    emit finished(outcome_, message, {});
  });
}

bool RecordRunner::start(const RecordSettings& settings) {
  if (isRunning()) return false;
  output_ = outputPath(settings);
  const QFileInfo before(output_);
  existedBefore_ = before.exists();
  modifiedBefore_ = before.lastModified();
  outcome_ = Outcome::None;
  ++processesStarted_;
  return process_->start(recordArguments(settings), settings.workingDir, recordEnvironment(settings));
}

void RecordRunner::cancel() {
  process_->cancel();
}

bool RecordRunner::runWritten() const {
  // record writes the run through a temporary file renamed into place: a new file, or a replaced one
  // with a new modification time.
  const QFileInfo after(output_);
  return after.isFile() && (!existedBefore_ || after.lastModified() != modifiedBefore_);
}

void RecordRunner::onFinished(int exitCode, bool crashed) {
  QString message = process_->lastMessage();
  if (message.isEmpty()) {
    message = crashed ? tr("moescope-cli record stopped abruptly (killed or crashed)")
                      : tr("moescope-cli record exited with status %1").arg(exitCode);
  }
  const QString run = runWritten() ? output_ : QString();
  if (process_->isCancelling())
    outcome_ = Outcome::Cancelled;
  else
    outcome_ = !crashed && exitCode == 0 && !run.isEmpty() ? Outcome::Complete : Outcome::Failed;
  emit finished(outcome_, message, run);
}

}  // namespace moescope::ui
