#include "ui/run_history_model.h"

#include <QDir>
#include <QFileInfo>
#include <QLocale>
#include <exception>

#include "storage/analysis_memory.h"
#include "storage/run_reader.h"
#include "ui/span_fields.h"

namespace moescope::ui {

RunHistoryEntry readRunEntry(const QString& path) {
  RunHistoryEntry e;
  e.path = QFileInfo(path).absoluteFilePath();
  e.modified = QFileInfo(path).lastModified();
  try {
    const auto reader = storage::RunReader::open(path.toStdString());
    const storage::Trace t = reader->loadWindow(0, 0);  // the run row and steps, no spans
    const auto& r = t.run;
    e.layout = QStringLiteral("%1 pp %2 tp %3 dp %4, %5 mb %6")
                   .arg(QString::fromStdString(r.layout.empty() ? std::string("?") : r.layout))
                   .arg(r.pp)
                   .arg(r.tp)
                   .arg(r.dp)
                   .arg(r.microbatches)
                   .arg(QString::fromUtf8(storage::scheduleName(r.schedule)));
    e.status = QString::fromUtf8(storage::runStatusName(r.status));
    e.backend = QString::fromStdString(r.backend);
    e.steps = static_cast<int>(t.steps.size());
    const size_t first = t.steps.size() > 1 ? 1 : 0;
    double ms = 0, tps = 0;
    for (size_t i = first; i < t.steps.size(); ++i) {
      ms += t.steps[i].step_ms;
      tps += t.steps[i].tokens_per_s;
    }
    if (t.steps.size() > first) {
      const double n = static_cast<double>(t.steps.size() - first);
      e.stepMs = ms / n;
      e.tokensPerS = tps / n;
    }
    e.peakMemoryBytes = storage::peakDeviceMemory(t);
  } catch (const std::exception& ex) {
    e.readable = false;
    e.status = QObject::tr("unreadable: %1").arg(QString::fromUtf8(ex.what()));
  }
  return e;
}

RunHistoryModel::RunHistoryModel(QObject* parent) : QAbstractTableModel(parent) {}

void RunHistoryModel::setFolder(const QString& folder) {
  folder_ = folder;
  reload();
}

void RunHistoryModel::reload() {
  beginResetModel();
  entries_.clear();
  if (!folder_.isEmpty()) {
    const QDir dir(folder_);
    for (const QString& name : dir.entryList({QStringLiteral("*.moescope")}, QDir::Files, QDir::Time))
      entries_.push_back(readRunEntry(dir.filePath(name)));
  }
  endResetModel();
}

int RunHistoryModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(entries_.size());
}

int RunHistoryModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

QVariant RunHistoryModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid)) return {};
  const RunHistoryEntry& e = entries_[static_cast<size_t>(index.row())];
  if (role == Qt::ToolTipRole) return e.readable ? e.path : e.status;
  if (role == Qt::TextAlignmentRole) {
    const int c = index.column();
    if (c == Steps || c == StepTime || c == TokensPerS || c == PeakMemory)
      return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    return {};
  }
  if (role != Qt::DisplayRole) return {};
  const QLocale locale;
  switch (index.column()) {
    case File:
      return QFileInfo(e.path).fileName();
    case Layout:
      return e.layout;
    case Status:
      return e.status;
    case Steps:
      return e.readable ? QVariant(e.steps) : QVariant();
    case StepTime:
      return e.steps > 0 ? locale.toString(e.stepMs, 'f', 1) + QStringLiteral(" ms") : QString();
    case TokensPerS:
      return e.steps > 0 ? locale.toString(e.tokensPerS, 'f', 0) : QString();
    case PeakMemory:
      return e.peakMemoryBytes > 0 ? QString::fromStdString(formatBytes(e.peakMemoryBytes)) : QString();
    case Backend:
      return e.backend;
    case Modified:
      return locale.toString(e.modified, QLocale::ShortFormat);
    default:
      return {};
  }
}

QVariant RunHistoryModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case File:
      return tr("Run file");
    case Layout:
      return tr("Layout");
    case Status:
      return tr("Status");
    case Steps:
      return tr("Steps");
    case StepTime:
      return tr("Step time");
    case TokensPerS:
      return tr("Tokens/s");
    case PeakMemory:
      return tr("Peak memory");
    case Backend:
      return tr("Backend");
    case Modified:
      return tr("Written");
    default:
      return {};
  }
}

}  // namespace moescope::ui
