// Runs `moescope-cli train` as a child process: checks a run's settings first with the CLI's
// --dry-run (the same rules as a real run, nothing written), then starts it, turns its stderr
// progress lines into progress(), says when its run file can be opened, and ends with its outcome.
// Cancel sends SIGINT, as Ctrl-C does in a terminal: the CLI stops between micro-batches and marks the
// run file cancelled; a run that has not stopped 15 s later is killed. Destroying a launcher whose run
// is going cancels the run the same way (waiting up to 5 s).
#pragma once

#include <QObject>
#include <QString>

#include "ui/run_progress.h"
#include "ui/run_settings.h"

class QProcess;
class QTemporaryFile;
class QTimer;

namespace moescope::ui {

struct RunCheck {
  bool ok = false;
  QString message;  // "ok", or the CLI's one-line reason
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
  // The last line on stderr that is not a progress line, without the "moescope-cli train: " prefix.
  const QString& lastMessage() const { return lastMessage_; }
  // Training processes started by this launcher so far.
  int processesStarted() const { return processesStarted_; }
  void setKillTimeoutMs(int ms) { killTimeoutMs_ = ms; }

 signals:
  void started(const QString& runFile);
  void progress(const moescope::ui::StepProgress& progress);
  void runFileReady(const QString& runFile);  // the file exists, with its first step written
  void finished(moescope::ui::RunLauncher::Outcome outcome, const QString& message);

 private:
  void readStderr();
  void handleLine(const QString& line);
  void onFinished(int exitCode, int exitStatus);
  void announceFile();
  void finish(Outcome outcome, const QString& message);

  QString cli_;
  RunSettings settings_;
  QProcess* process_ = nullptr;
  QTemporaryFile* emptyConfig_ = nullptr;
  QTimer* killTimer_ = nullptr;
  QByteArray stderrBuffer_;
  State state_ = State::Idle;
  Outcome outcome_ = Outcome::None;
  StepProgress progress_;
  QString lastMessage_;
  bool fileAnnounced_ = false;
  int processesStarted_ = 0;
  int killTimeoutMs_ = 15'000;
};

}  // namespace moescope::ui
