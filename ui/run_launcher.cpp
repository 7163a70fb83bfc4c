#include "ui/run_launcher.h"

#include <QDir>
#include <QFileInfo>
#include <QHash>
#include <QProcess>
#include <QTemporaryFile>
#include <QTimer>
#include <exception>

#include "storage/run_reader.h"

namespace moescope::ui {
namespace {

const QString kPrefix = QStringLiteral("moescope-cli train: ");
constexpr int kPollMs = 300;

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
  QString message = lastMessageOf(err, kPrefix);
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
  process_ = new CliProcess(cli_, kPrefix, CliProcess::Stop::Process, this);
  connect(process_, &CliProcess::finished, this, &RunLauncher::onFinished);
  connect(process_, &CliProcess::failedToStart, this,
          [this](const QString& message) { finish(Outcome::Failed, message); });
}

void RunLauncher::setPollMs(int ms) {
  pollTimer_->setInterval(ms);
}

RunLauncher::~RunLauncher() {
  reader_.reset();
  // Closing the app cancels the run as Cancel does, so its file says cancelled (~CliProcess).
  process_->disconnect(this);
  delete process_;
}

bool RunLauncher::start(const RunSettings& settings) {
  if (isRunning()) return false;
  settings_ = settings;
  progress_ = {};
  reader_.reset();
  fileAnnounced_ = false;
  outcome_ = Outcome::None;
  delete emptyConfig_;
  emptyConfig_ = nullptr;
  QString config;
  if (settings.preset.isEmpty()) {
    emptyConfig_ = new QTemporaryFile(this);
    config = emptyConfigFile(*emptyConfig_);
  }
  state_ = State::Running;
  ++processesStarted_;
  if (!process_->start(trainArguments(settings, config, false))) return false;  // finished() said why
  pollTimer_->start();
  emit started(settings.out);
  return true;
}

void RunLauncher::cancel() {
  if (state_ != State::Running) return;
  state_ = State::Cancelling;
  process_->cancel();
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

void RunLauncher::onFinished(int exitCode, bool crashed) {
  pollTimer_->stop();
  poll();  // the last steps, and the file if no poll saw it yet
  reader_.reset();
  const QString& message = process_->lastMessage();
  if (crashed) {
    finish(state_ == State::Cancelling ? Outcome::Cancelled : Outcome::Failed,
           tr("moescope-cli train stopped abruptly (killed or crashed)"));
  } else if (exitCode == 0) {
    finish(Outcome::Complete, tr("complete"));
  } else if (exitCode == 130) {
    finish(Outcome::Cancelled, tr("cancelled"));
  } else if (exitCode == 2) {
    finish(Outcome::Rejected, message);
  } else {
    finish(Outcome::Failed,
           message.isEmpty() ? tr("moescope-cli train exited with status %1").arg(exitCode) : message);
  }
}

void RunLauncher::finish(Outcome outcome, const QString& message) {
  if (state_ == State::Finished || state_ == State::Idle) return;
  state_ = State::Finished;
  outcome_ = outcome;
  emit finished(outcome, message);
}

}  // namespace moescope::ui
