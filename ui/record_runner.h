// Runs `moescope-cli record ... -- CMD ARGS...` as a child process (CliProcess, in a process group of
// its own) for File > Record: passes on the recorded program's output and record's `moescope:` lines
// as they come, and ends with the outcome and whether a run file was written. Cancel sends SIGINT to
// the whole group, as Ctrl-C in a terminal does: record ignores it while the command runs, the
// command's processes end, and record merges what they wrote (the run marked failed).
#pragma once

#include <QDateTime>
#include <QObject>
#include <QString>

#include "ui/cli_process.h"
#include "ui/record_settings.h"
#include "ui/run_settings.h"

namespace moescope::ui {

class RecordRunner : public QObject {
  Q_OBJECT

 public:
  // Complete: record and its command exited 0 and a run file was written. Failed: anything else
  // that was not asked for (the command failed, nothing was recorded, record refused). Cancelled:
  // ended after cancel().
  enum class Outcome { None, Complete, Failed, Cancelled };
  Q_ENUM(Outcome)

  explicit RecordRunner(QObject* parent = nullptr, const QString& cli = cliPath());

  // Starts record with settings that recordSettingsProblem() accepted; false when one is going or the
  // CLI cannot start (finished() then says why).
  bool start(const RecordSettings& settings);
  void cancel();
  bool isRunning() const { return process_->isRunning(); }
  CliProcess* process() const { return process_; }
  Outcome outcome() const { return outcome_; }
  // Record processes started by this runner so far.
  int processesStarted() const { return processesStarted_; }

 signals:
  // A line of the recorded program's output, or one of record's (stderr, starting "moescope: ").
  void output(const QString& line, bool isStderr);
  // message: record's last `moescope:` line without its prefix (else the last line on stderr);
  // runFile: the run written by this recording, or "" when none was.
  void finished(moescope::ui::RecordRunner::Outcome outcome, const QString& message, const QString& runFile);

 private:
  void onFinished(int exitCode, bool crashed);
  bool runWritten() const;

  CliProcess* process_ = nullptr;
  QString output_;
  // The run file as it was before the recording (it may be replaced), to tell whether it was written.
  bool existedBefore_ = false;
  QDateTime modifiedBefore_;
  Outcome outcome_ = Outcome::None;
  int processesStarted_ = 0;
};

}  // namespace moescope::ui
