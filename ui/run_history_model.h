// The run files of a folder, a row each, with their layout and headline numbers: status, steps,
// mean step time and tokens/s (the first step, the warm-up, left out when there are more), the peak
// device memory (where the backend counted it), backend, and when the file was last written. Read through
// storage's RunReader without the spans.
#pragma once

#include <QAbstractTableModel>
#include <QDateTime>
#include <QString>
#include <vector>

namespace moescope::ui {

struct RunHistoryEntry {
  QString path;
  QString layout;  // "ppmoe pp 2 tp 2 dp 1, 4 mb 1f1b"
  QString status;  // running, complete, failed, cancelled; or "unreadable: <why>"
  QString backend;
  int steps = 0;
  double stepMs = 0;            // 0 when there are no steps
  double tokensPerS = 0;        // 0 when there are no steps
  int64_t peakMemoryBytes = 0;  // storage's peakDeviceMemory: 0 when not counted (a CPU run)
  QDateTime modified;
  bool readable = true;
};

// Reads one run file's entry (never throws; an unreadable file says why in status).
RunHistoryEntry readRunEntry(const QString& path);

class RunHistoryModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    File,
    Layout,
    Status,
    Steps,
    StepTime,
    TokensPerS,
    PeakMemory,
    Backend,
    Modified,
    ColumnCount
  };

  explicit RunHistoryModel(QObject* parent = nullptr);

  // Lists folder's *.moescope files, newest first.
  void setFolder(const QString& folder);
  const QString& folder() const { return folder_; }
  void reload();
  const RunHistoryEntry& entry(int row) const { return entries_.at(static_cast<size_t>(row)); }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  QString folder_;
  std::vector<RunHistoryEntry> entries_;
};

}  // namespace moescope::ui
