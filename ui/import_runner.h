// Imports PyTorch profiler traces on a thread of its own (storage::importTraces, the same import as
// `moescope-cli import`), with progress in file bytes and cancel. The GUI's File > Import runs through
// it; the window stays live, and a cancelled or failed import leaves nothing behind.
#pragma once

#include <QObject>
#include <QString>
#include <QStringList>
#include <atomic>
#include <memory>
#include <thread>

namespace moescope::ui {

struct ImportSettings {
  QStringList traces;
  QString output;
  int pp = 0, tp = 0, dp = 0;  // 0: follow from the traces (storage::ImportOptions)
  QString order = QStringLiteral("tp-dp-pp");
  QString schedule = QStringLiteral("1f1b");
  QStringList rules;
  bool operator==(const ImportSettings&) const = default;
};

class ImportRunner : public QObject {
  Q_OBJECT

 public:
  enum class Outcome { None, Complete, Cancelled, Failed };
  Q_ENUM(Outcome)

  explicit ImportRunner(QObject* parent = nullptr);
  // Cancels a running import and waits for its thread.
  ~ImportRunner() override;

  // Starts the import; false if one is running.
  bool start(const ImportSettings& settings);
  // Asks the import to stop: it ends with Outcome::Cancelled and writes nothing.
  void cancel();
  bool isRunning() const { return running_; }
  Outcome outcome() const { return outcome_; }

 signals:
  // Per mille of the traces' bytes read (0..1000), emitted when it changes.
  void progress(int perMille);
  // Complete: message is the summary ("2 ranks, 59 spans, 21 GPU records"), followed by the import's
  // notes, one per line; Failed: the one-line reason.
  void finished(moescope::ui::ImportRunner::Outcome outcome, const QString& message);

 private:
  void join();

  std::thread thread_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  std::shared_ptr<std::atomic<int>> lastPerMille_;
  bool running_ = false;
  Outcome outcome_ = Outcome::None;
};

}  // namespace moescope::ui
