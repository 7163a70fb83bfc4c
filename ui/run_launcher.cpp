#include "ui/run_launcher.h"

#include <QDir>
#include <QFileInfo>
#include <QHash>
#include <QProcess>
#include <QTemporaryFile>
#include <QTimer>
#ifdef Q_OS_UNIX
#include <signal.h>
#endif
#include <exception>

#include "storage/run_reader.h"

namespace moescope::ui {
namespace {

const QString kPrefix = QStringLiteral("moescope-cli train: ");
constexpr int kPollMs = 300;

QString stripPrefix(QString line) {
  line = line.trimmed();
  if (line.startsWith(kPrefix)) line.remove(0, kPrefix.size());
  return line;
}

QString lastLine(const QByteArray& text) {
  const QStringList lines = QString::fromUtf8(text).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (!it->trimmed().isEmpty()) return stripPrefix(*it);
  }
  return {};
}

// An empty TOML file: every key at MODEL.md's default, for settings without a preset.
QString emptyConfigFile(QTemporaryFile& file) {
  file.setFileTemplate(QDir::temp().filePath(QStringLiteral("moescope-run-XXXXXX.toml")));
  if (!file.open()) return {};
  file.close();
  return file.fileName();
}

}  // namespace

RunCheck checkRun(const RunSettings& settings, const QString& cli, int timeoutMs) {
  QTemporaryFile empty;
  const QString config = settings.preset.isEmpty() ? emptyConfigFile(empty) : settings.preset;
  QProcess p;
  p.start(cli, trainArguments(settings, config, true));
  if (!p.waitForStarted(timeoutMs))
    return {false, QObject::tr("cannot run %1: %2").arg(cli, p.errorString()), {}};
  if (!p.waitForFinished(timeoutMs)) {
    p.kill();
    p.waitForFinished(1000);
    return {false, QObject::tr("checking the run took longer than %1 s").arg(timeoutMs / 1000), {}};
  }
  const QByteArray out = p.readAllStandardOutput(), err = p.readAllStandardError();
  // stdout: "ok", then the schedule's passes per stage.
  const qsizetype eol = out.indexOf('\n');
  const QByteArray first = eol < 0 ? out : out.left(eol);
  if (p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0 && first.trimmed() == "ok") {
    return {true, QStringLiteral("ok"), eol < 0 ? QString() : QString::fromUtf8(out.mid(eol + 1)).trimmed()};
  }
  QString message = lastLine(err);
  if (message.isEmpty()) message = QObject::tr("moescope-cli exited with status %1").arg(p.exitCode());
  return {false, message, {}};
}

QString backendUnavailableReason(const QString& backend, const QString& cli) {
  static QHash<QString, QString> cache;
  const QString key = cli + QLatin1Char('\n') + backend;
  if (auto it = cache.constFind(key); it != cache.constEnd()) return *it;
  RunSettings probe;  // MODEL.md's defaults: one rank
  probe.backend = backend;
  const RunCheck check = checkRun(probe, cli);
  const QString reason = check.ok ? QString() : check.message;
  cache.insert(key, reason);
  return reason;
}

RunLauncher::RunLauncher(QObject* parent, QString cli) : QObject(parent), cli_(std::move(cli)) {
  pollTimer_ = new QTimer(this);
  pollTimer_->setInterval(kPollMs);
  connect(pollTimer_, &QTimer::timeout, this, &RunLauncher::poll);
  killTimer_ = new QTimer(this);
  killTimer_->setSingleShot(true);
  connect(killTimer_, &QTimer::timeout, this, [this] {
    if (process_ && process_->state() != QProcess::NotRunning) process_->kill();
  });
}

void RunLauncher::setPollMs(int ms) {
  pollTimer_->setInterval(ms);
}

RunLauncher::~RunLauncher() {
  reader_.reset();
  if (!process_ || process_->state() == QProcess::NotRunning) return;
  // Closing the app cancels the run as Cancel does, so its file says cancelled; killed if it hangs.
  process_->disconnect(this);
#ifdef Q_OS_UNIX
  if (const qint64 pid = process_->processId(); pid > 0) ::kill(static_cast<pid_t>(pid), SIGINT);
#else
  process_->terminate();
#endif
  if (!process_->waitForFinished(5000)) {
    process_->kill();
    process_->waitForFinished(2000);
  }
}

bool RunLauncher::start(const RunSettings& settings) {
  if (isRunning()) return false;
  settings_ = settings;
  progress_ = {};
  reader_.reset();
  lastMessage_.clear();
  lastMessageIsError_ = false;
  stderrBuffer_.clear();
  fileAnnounced_ = false;
  outcome_ = Outcome::None;
  if (process_) {
    process_->disconnect(this);
    process_->deleteLater();  // start() may be called from its finished() signal
  }
  delete emptyConfig_;
  emptyConfig_ = nullptr;
  QString config;
  if (settings.preset.isEmpty()) {
    emptyConfig_ = new QTemporaryFile(this);
    config = emptyConfigFile(*emptyConfig_);
  }
  process_ = new QProcess(this);
  connect(process_, &QProcess::readyReadStandardError, this, &RunLauncher::readStderr);
  connect(process_, &QProcess::finished, this,
          [this](int code, QProcess::ExitStatus status) { onFinished(code, status); });
  connect(process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
    if (error == QProcess::FailedToStart) {
      finish(Outcome::Failed, tr("cannot run %1: %2").arg(cli_, process_->errorString()));
    }
  });
  state_ = State::Running;
  ++processesStarted_;
  process_->start(cli_, trainArguments(settings, config, false));
  if (state_ != State::Running) return false;  // failed to start, already reported
  pollTimer_->start();
  emit started(settings.out);
  return true;
}

void RunLauncher::cancel() {
  if (state_ != State::Running || !process_) return;
  state_ = State::Cancelling;
#ifdef Q_OS_UNIX
  if (const qint64 pid = process_->processId(); pid > 0) ::kill(static_cast<pid_t>(pid), SIGINT);
#else
  process_->terminate();
#endif
  killTimer_->start(killTimeoutMs_);
}

void RunLauncher::readStderr() {
  stderrBuffer_ += process_->readAllStandardError();
  qsizetype newline;
  while ((newline = stderrBuffer_.indexOf('\n')) >= 0) {
    const QString line = QString::fromUtf8(stderrBuffer_.left(newline));
    stderrBuffer_.remove(0, newline + 1);
    handleLine(line);
  }
}

void RunLauncher::handleLine(const QString& line) {
  const QString trimmed = line.trimmed();
  if (trimmed.isEmpty()) return;
  // The CLI says what went wrong on a line of its own, after its name.
  if (trimmed.startsWith(kPrefix) || !lastMessageIsError_) lastMessage_ = stripPrefix(trimmed);
  if (trimmed.startsWith(kPrefix)) lastMessageIsError_ = true;
}

void RunLauncher::poll() {
  if (settings_.out.isEmpty()) return;
  try {
    if (!reader_) {
      if (!QFileInfo::exists(settings_.out)) return;
      // The file exists as soon as the writer starts; it reads once the schema is committed.
      reader_ = storage::RunReader::open(settings_.out.toStdString());
      if (!fileAnnounced_) {
        fileAnnounced_ = true;
        emit runFileReady(settings_.out);
      }
    }
    const auto p =
        progressOf(reader_->steps(), static_cast<int>(settings_.integer(QStringLiteral("train.steps"))));
    if (p && *p != progress_) {
      progress_ = *p;
      emit progress(progress_);
    }
  } catch (const std::exception&) {
    reader_.reset();  // not readable yet (a file being created); the next poll tries again
  }
}

void RunLauncher::onFinished(int exitCode, int exitStatus) {
  killTimer_->stop();
  pollTimer_->stop();
  readStderr();
  if (!stderrBuffer_.isEmpty()) {
    handleLine(QString::fromUtf8(stderrBuffer_));
    stderrBuffer_.clear();
  }
  poll();  // the last steps, and the file if no poll saw it yet
  reader_.reset();
  if (exitStatus != QProcess::NormalExit) {
    finish(state_ == State::Cancelling ? Outcome::Cancelled : Outcome::Failed,
           tr("moescope-cli train stopped abruptly (killed or crashed)"));
  } else if (exitCode == 0) {
    finish(Outcome::Complete, tr("complete"));
  } else if (exitCode == 130) {
    finish(Outcome::Cancelled, tr("cancelled"));
  } else if (exitCode == 2) {
    finish(Outcome::Rejected, lastMessage_);
  } else {
    finish(Outcome::Failed, lastMessage_.isEmpty()
                                ? tr("moescope-cli train exited with status %1").arg(exitCode)
                                : lastMessage_);
  }
}

void RunLauncher::finish(Outcome outcome, const QString& message) {
  if (state_ == State::Finished || state_ == State::Idle) return;
  state_ = State::Finished;
  outcome_ = outcome;
  emit finished(outcome, message);
}

}  // namespace moescope::ui
