#include "ui/import_runner.h"

#include <QMetaObject>
#include <QPointer>

#include "storage/import_error.h"
#include "storage/import_traces.h"
#include "storage/rules.h"
#include "storage/storage_error.h"

namespace moescope::ui {

ImportRunner::ImportRunner(QObject* parent) : QObject(parent) {}

ImportRunner::~ImportRunner() {
  cancel();
  join();
}

void ImportRunner::join() {
  if (thread_.joinable()) thread_.join();
}

void ImportRunner::cancel() {
  if (cancel_) cancel_->store(true);
}

bool ImportRunner::start(const ImportSettings& settings) {
  if (running_) return false;
  join();
  storage::ImportOptions o;
  for (const QString& t : settings.traces) o.traces.emplace_back(t.toStdString());
  o.output = settings.output.toStdString();
  if (settings.pp > 0) o.pp = settings.pp;
  if (settings.tp > 0) o.tp = settings.tp;
  if (settings.dp > 0) o.dp = settings.dp;
  o.order = settings.order.toStdString();
  o.schedule =
      storage::scheduleFromName(settings.schedule.toStdString()).value_or(storage::Schedule::OneFOneB);
  for (const QString& r : settings.rules) o.rules.emplace_back(r.toStdString());
  cancel_ = std::make_shared<std::atomic<bool>>(false);
  lastPerMille_ = std::make_shared<std::atomic<int>>(-1);
  o.cancel = cancel_.get();
  running_ = true;
  outcome_ = Outcome::None;
  emit progress(0);

  // The thread speaks to this object only through queued calls, which Qt drops if it is gone.
  QPointer<ImportRunner> self(this);
  auto lastPerMille = lastPerMille_;
  o.progress = [self, lastPerMille](uint64_t done, uint64_t total) {
    const int perMille = total > 0 ? static_cast<int>(std::min<uint64_t>(1000, done * 1000 / total)) : 0;
    if (lastPerMille->exchange(perMille) == perMille) return;
    QMetaObject::invokeMethod(
        self,
        [self, perMille] {
          if (self) emit self->progress(perMille);
        },
        Qt::QueuedConnection);
  };
  thread_ = std::thread([self, o = std::move(o), cancel = cancel_] {
    Outcome outcome = Outcome::Complete;
    QString message;
    try {
      const storage::ImportSummary s = storage::importTraces(o);
      message = QObject::tr("%1 ranks, %2 steps, %3 spans, %4 GPU records")
                    .arg(s.ranks.size())
                    .arg(s.steps)
                    .arg(s.spans)
                    .arg(s.gpu_records);
      for (const std::string& note : s.notes) message += QLatin1Char('\n') + QString::fromStdString(note);
    } catch (const storage::ImportCancelled&) {
      outcome = Outcome::Cancelled;
      message = QObject::tr("import cancelled; nothing was written");
    } catch (const std::exception& e) {  // ImportError, RulesError, StorageError: one line each
      outcome = Outcome::Failed;
      message = QString::fromStdString(e.what());
    }
    QMetaObject::invokeMethod(
        self,
        [self, outcome, message] {
          if (!self) return;
          self->running_ = false;
          self->outcome_ = outcome;
          emit self->finished(outcome, message);
        },
        Qt::QueuedConnection);
  });
  return true;
}

}  // namespace moescope::ui
