#include "ui/cli_process.h"

#include <QDir>
#include <QFile>
#include <QTimer>
#ifdef Q_OS_UNIX
#include <signal.h>
#include <unistd.h>
#endif
#ifdef Q_OS_LINUX
#include <sys/prctl.h>
#endif

namespace moescope::ui {
namespace {

// A line longer than this without a newline (a progress bar redrawn with \r) is passed on as it is,
// so that a program's output cannot grow the buffer without bound.
constexpr qsizetype kMaxLine = 64 * 1024;

int index(QProcess::ProcessChannel channel) {
  return channel == QProcess::StandardError ? 1 : 0;
}

}  // namespace

void LastMessage::add(const QString& line) {
  const QString trimmed = line.trimmed();
  if (trimmed.isEmpty()) return;
  const bool prefixed = !prefix.isEmpty() && trimmed.startsWith(prefix);
  if (!prefixed && fromPrefix) return;
  text = prefixed ? trimmed.mid(prefix.size()) : trimmed;
  fromPrefix = fromPrefix || prefixed;
}

QString lastMessageOf(const QByteArray& stderrText, const QString& prefix) {
  LastMessage last{prefix};
  for (const QString& line : QString::fromUtf8(stderrText).split(QLatin1Char('\n'))) last.add(line);
  return last.text;
}

QList<qint64> processesOfGroup(qint64 pgid) {
  QList<qint64> found;
  // /proc/PID/stat: "PID (COMMAND) STATE PPID PGRP ...", the command in parentheses that may itself
  // hold spaces and parentheses.
  for (const QString& entry : QDir(QStringLiteral("/proc")).entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
    bool number = false;
    const qint64 pid = entry.toLongLong(&number);
    if (!number) continue;
    QFile stat(QStringLiteral("/proc/%1/stat").arg(entry));
    if (!stat.open(QIODevice::ReadOnly)) continue;
    const QByteArray text = stat.readAll();
    const QList<QByteArray> fields = text.mid(text.lastIndexOf(')') + 1).simplified().split(' ');
    if (fields.size() > 2 && fields[2].toLongLong() == pgid && fields[0] != "Z") found << pid;
  }
  return found;
}

CliProcess::CliProcess(QString cli, QString messagePrefix, Stop stop, QObject* parent)
    : QObject(parent), cli_(std::move(cli)), stop_(stop) {
  lastMessage_.prefix = std::move(messagePrefix);
  killTimer_ = new QTimer(this);
  killTimer_->setSingleShot(true);
  connect(killTimer_, &QTimer::timeout, this, [this] {
#ifdef Q_OS_UNIX
    sendSignal(SIGKILL, true);
#else
    if (process_) process_->kill();
#endif
  });
}

CliProcess::~CliProcess() {
  if (!isRunning()) return;
  // Nothing is reported from here on: the owner is going too.
  process_->disconnect(this);
#ifdef Q_OS_UNIX
  sendSignal(SIGINT, false);
  if (process_->waitForFinished(5000)) return;
  sendSignal(SIGKILL, true);
  if (stop_ == Stop::Group && process_->waitForFinished(5000)) return;
#endif
  process_->kill();
  process_->waitForFinished(2000);
}

bool CliProcess::isRunning() const {
  return process_ && process_->state() != QProcess::NotRunning;
}

qint64 CliProcess::processId() const {
  return isRunning() ? process_->processId() : 0;
}

bool CliProcess::start(const QStringList& arguments, const QString& workingDir,
                       const QProcessEnvironment& environment) {
  if (isRunning()) return false;
  if (process_) {
    process_->disconnect(this);
    process_->deleteLater();  // start() may be called from its finished() signal
  }
  buffers_[0].clear();
  buffers_[1].clear();
  lastMessage_ = {lastMessage_.prefix};
  cancelling_ = false;
  killTimer_->stop();
  process_ = new QProcess(this);
  process_->setStandardInputFile(QProcess::nullDevice());
  if (!workingDir.isEmpty()) process_->setWorkingDirectory(workingDir);
  if (!environment.isEmpty()) process_->setProcessEnvironment(environment);
#ifdef Q_OS_UNIX
  if (stop_ == Stop::Group) {
    process_->setChildProcessModifier([] {
      ::setpgid(0, 0);
#ifdef Q_OS_LINUX
      // If the GUI dies without closing (a crash, a kill), the CLI gets SIGTERM: `record` passes it on
      // to its command and merges what was written.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    });
  }
#endif
  connect(process_, &QProcess::readyReadStandardOutput, this, [this] { read(QProcess::StandardOutput); });
  connect(process_, &QProcess::readyReadStandardError, this, [this] { read(QProcess::StandardError); });
  connect(process_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
    killTimer_->stop();
    read(QProcess::StandardOutput);
    read(QProcess::StandardError);
    flush();
    emit finished(code, status != QProcess::NormalExit);
  });
  // A program that cannot start is reported from within start() or soon after; finished() does not
  // follow it.
  connect(process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
    if (error != QProcess::FailedToStart) return;
    startFailed_ = true;
    emit failedToStart(tr("cannot run %1: %2").arg(cli_, process_->errorString()));
  });
  startFailed_ = false;
  process_->start(cli_, arguments);
  return !startFailed_;
}

void CliProcess::cancel() {
  if (!isRunning() || cancelling_) return;
  cancelling_ = true;
#ifdef Q_OS_UNIX
  sendSignal(SIGINT, false);
#else
  process_->terminate();
#endif
  killTimer_->start(killTimeoutMs_);
}

void CliProcess::sendSignal(int signal, bool othersOnly) const {
#ifdef Q_OS_UNIX
  const qint64 pid = processId();
  if (pid <= 0) return;
  if (stop_ == Stop::Process) {
    ::kill(static_cast<pid_t>(pid), signal);
    return;
  }
  if (!othersOnly) {
    if (::kill(static_cast<pid_t>(-pid), signal) != 0) ::kill(static_cast<pid_t>(pid), signal);
    return;
  }
#ifdef Q_OS_LINUX
  for (const qint64 other : processesOfGroup(pid)) {
    if (other != pid) ::kill(static_cast<pid_t>(other), signal);
  }
#else
  ::kill(static_cast<pid_t>(-pid), signal);
#endif
#else
  (void)signal;
  (void)othersOnly;
#endif
}

void CliProcess::read(QProcess::ProcessChannel channel) {
  if (!process_) return;
  QByteArray& buffer = buffers_[index(channel)];
  buffer += channel == QProcess::StandardError ? process_->readAllStandardError()
                                               : process_->readAllStandardOutput();
  qsizetype newline;
  while ((newline = buffer.indexOf('\n')) >= 0 || buffer.size() > kMaxLine) {
    const qsizetype end = newline >= 0 ? newline : kMaxLine;
    QString text = QString::fromUtf8(buffer.left(end));
    buffer.remove(0, newline >= 0 ? end + 1 : end);
    if (text.endsWith(QLatin1Char('\r'))) text.chop(1);
    if (channel == QProcess::StandardError) lastMessage_.add(text);
    emit line(text, channel);
  }
}

void CliProcess::flush() {
  for (QProcess::ProcessChannel channel : {QProcess::StandardOutput, QProcess::StandardError}) {
    QByteArray& buffer = buffers_[index(channel)];
    if (buffer.isEmpty()) continue;
    const QString text = QString::fromUtf8(buffer);
    buffer.clear();
    if (channel == QProcess::StandardError) lastMessage_.add(text);
    emit line(text, channel);
  }
}

}  // namespace moescope::ui
