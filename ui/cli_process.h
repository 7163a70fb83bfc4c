// One `moescope-cli` command run as a child process by the GUI (train from the run launcher, record
// from the record dialog): its stdout and stderr read line by line as they come, the CLI's last
// message kept, and a cancel that stops it as Ctrl-C in a terminal does.
//
// Cancel sends SIGINT. With Stop::Process it goes to the CLI alone (train stops between
// micro-batches and marks its run cancelled); with Stop::Group the CLI runs in a process group of its
// own and SIGINT goes to the whole group, as a terminal sends it: `record` ignores it while its command
// runs, and every process of the command (a torchrun job's workers too) gets it. What has not ended
// killTimeoutMs later is killed: the CLI itself with Stop::Process; with Stop::Group the group's other
// processes only, so that `record` still merges what they wrote. Destroying a CliProcess whose command
// is going cancels it the same way, waiting up to 5 s (then 5 s more for the CLI to finish its file).
#pragma once

#include <QObject>
#include <QProcess>
#include <QString>
#include <QStringList>

class QTimer;

namespace moescope::ui {

// The CLI's last message from its stderr lines: the last line that starts with the CLI's prefix
// ("moescope-cli train: ", "moescope: "), without it; else the last non-empty line.
struct LastMessage {
  QString prefix;
  QString text;
  bool fromPrefix = false;
  void add(const QString& line);
};

// The last message of a whole stderr text.
QString lastMessageOf(const QByteArray& stderrText, const QString& prefix);

// The live processes (zombies left out) of a process group, from /proc; empty where there is no
// /proc.
QList<qint64> processesOfGroup(qint64 pgid);

class CliProcess : public QObject {
  Q_OBJECT

 public:
  enum class Stop { Process, Group };
  Q_ENUM(Stop)

  CliProcess(QString cli, QString messagePrefix, Stop stop, QObject* parent = nullptr);
  ~CliProcess() override;

  // Starts `cli arguments...` in workingDir (empty: the GUI's own) with environment (the GUI's, when
  // empty); stdin is /dev/null. False when one is going or it cannot start (failedToStart() says why).
  bool start(const QStringList& arguments, const QString& workingDir = {},
             const QProcessEnvironment& environment = {});
  void cancel();
  bool isRunning() const;
  bool isCancelling() const { return cancelling_; }
  // The CLI's process id while it runs (with Stop::Group, also its process group's id); 0 otherwise.
  qint64 processId() const;
  const QString& lastMessage() const { return lastMessage_.text; }
  void setKillTimeoutMs(int ms) { killTimeoutMs_ = ms; }

 signals:
  // A line of the command's output, without its newline.
  void line(const QString& text, QProcess::ProcessChannel channel);
  void failedToStart(const QString& message);
  // crashed: ended by a signal (the CLI killed, or a crash).
  void finished(int exitCode, bool crashed);

 private:
  void read(QProcess::ProcessChannel channel);
  void flush();
  void sendSignal(int signal, bool othersOnly) const;

  QString cli_;
  Stop stop_;
  QProcess* process_ = nullptr;
  QTimer* killTimer_ = nullptr;
  QByteArray buffers_[2];
  LastMessage lastMessage_;
  bool cancelling_ = false;
  bool startFailed_ = false;
  int killTimeoutMs_ = 15'000;
};

}  // namespace moescope::ui
