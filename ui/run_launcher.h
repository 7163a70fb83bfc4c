// Runs `moescope-cli train` as a child process (CliProcess): checks a run's settings first with the CLI's
// --dry-run (the same rules as a real run, nothing written), then starts it, follows its run file
// (step_metric: the same file the timeline reads, no text from the CLI) for progress(), says when
// that file can be opened, and ends with its outcome (a failure with the CLI's one-line error).
// Cancel sends SIGINT, as Ctrl-C does in a terminal: the CLI stops between micro-batches and marks the
// run file cancelled; a run that has not stopped 15 s later is killed. Destroying a launcher whose run
// is going cancels the run the same way (waiting up to 5 s).
#pragma once

#include <QObject>
#include <QString>
#include <memory>

#include "ui/cli_process.h"
#include "ui/run_progress.h"
#include "ui/run_settings.h"

namespace moescope::storage {
class RunReader;
}

class QTemporaryFile;
class QTimer;

namespace moescope::ui {

struct RunCheck {
  bool ok = false;
  QString message;  // "ok", or the CLI's one-line reason
  // What --dry-run prints after "ok": the schedule with its theoretical bubble, then each stage's
  // passes in order (F0, B0, W0; F0.1 for chunk 1). Empty when the check failed.
  QString plan;
};

// `moescope-cli train ... --dry-run`, synchronously; at most timeoutMs.
RunCheck checkRun(const RunSettings& settings, const QString& cli = cliPath(), int timeoutMs = 20'000);
// Why a backend cannot run here ("" if it can), asked of the CLI once per backend and process.
QString backendUnavailableReason(const QString& backend, const QString& cli = cliPath());

class RunLauncher : public QObject {
  Q_OBJECT

 public:
  enum class State { Idle, Running, Cancelling, Finished };
  enum class Outcome { None, Complete, Cancelled, Failed, Rejected };
  Q_ENUM(State)
  Q_ENUM(Outcome)

  explicit RunLauncher(QObject* parent = nullptr, QString cli = cliPath());
  ~RunLauncher() override;

  // Starts the run (settings.out must be set); false when a run is already going or the process
  // cannot start (finished() then says why).
  bool start(const RunSettings& settings);
  // Asks the run to stop; it ends with Outcome::Cancelled.
  void cancel();

  State state() const { return state_; }
  Outcome outcome() const { return outcome_; }
  bool isRunning() const { return state_ == State::Running || state_ == State::Cancelling; }
  const RunSettings& settings() const { return settings_; }
  const StepProgress& lastProgress() const { return progress_; }
  // The CLI's last error line (the last "moescope-cli train: ..." line, else the last line on stderr),
  // without its prefix.
  const QString& lastMessage() const { return process_->lastMessage(); }
  // How often the run file is read for progress.
  void setPollMs(int ms);
  // Training processes started by this launcher so far.
  int processesStarted() const { return processesStarted_; }
  void setKillTimeoutMs(int ms) { process_->setKillTimeoutMs(ms); }

 signals:
  void started(const QString& runFile);
  void progress(const moescope::ui::StepProgress& progress);
  void runFileReady(const QString& runFile);  // the file exists, with its first step written
  void finished(moescope::ui::RunLauncher::Outcome outcome, const QString& message);

 private:
  void onFinished(int exitCode, bool crashed);
  // Opens the run file once it reads (announcing it), then reads its step metrics.
  void poll();
  void finish(Outcome outcome, const QString& message);

  QString cli_;
  RunSettings settings_;
  CliProcess* process_ = nullptr;
  QTemporaryFile* emptyConfig_ = nullptr;
  QTimer* pollTimer_ = nullptr;
  std::unique_ptr<storage::RunReader> reader_;
  State state_ = State::Idle;
  Outcome outcome_ = Outcome::None;
  StepProgress progress_;
  bool fileAnnounced_ = false;
  int processesStarted_ = 0;
};

}  // namespace moescope::ui
