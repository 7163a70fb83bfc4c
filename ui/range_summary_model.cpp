#include "ui/range_summary_model.h"

#include <QLocale>

#include "ui/time_format.h"

namespace moescope::ui {

RangeSummaryModel::RangeSummaryModel(QObject* parent) : QAbstractTableModel(parent) {}

void RangeSummaryModel::setSummary(storage::RangeSummary summary) {
  beginResetModel();
  summary_ = std::move(summary);
  endResetModel();
}

void RangeSummaryModel::setTable(RangeTable table) {
  if (table == table_) return;
  beginResetModel();
  table_ = table;
  endResetModel();
}

const std::vector<storage::RangeRow>& rangeRows(const storage::RangeSummary& s, RangeTable table) {
  switch (table) {
    case RangeTable::GpuCategories:
      return s.gpuCategories;
    case RangeTable::Names:
      return s.names;
    case RangeTable::Kernels:
      return s.kernels;
    case RangeTable::HostCategories:
      break;
  }
  return s.hostCategories;
}

const std::vector<storage::RangeRow>& RangeSummaryModel::rows() const {
  return rangeRows(summary_, table_);
}

int RangeSummaryModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows().size());
}

int RangeSummaryModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

QVariant RangeSummaryModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount) return {};
  const storage::RangeRow& r = rows()[static_cast<size_t>(index.row())];
  if (role == ValueRole) {
    switch (index.column()) {
      case Label:
        return QString::fromStdString(r.label);
      case Count:
        return static_cast<qlonglong>(r.count);
      case Total:
        return static_cast<qlonglong>(r.total_ns);
      case Mean:
        return r.mean_ns;
      case Max:
        return static_cast<qlonglong>(r.max_ns);
      case Share:
        return r.share;
    }
    return {};
  }
  if (role == Qt::TextAlignmentRole)
    return index.column() == Label ? QVariant(Qt::AlignLeft | Qt::AlignVCenter)
                                   : QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role != Qt::DisplayRole && role != Qt::ToolTipRole) return {};
  switch (index.column()) {
    case Label:
      return QString::fromStdString(r.label);
    case Count:
      return QLocale().toString(static_cast<qlonglong>(r.count));
    case Total:
      return QString::fromStdString(formatDuration(r.total_ns));
    case Mean:
      return QString::fromStdString(formatDuration(static_cast<int64_t>(r.mean_ns + 0.5)));
    case Max:
      return QString::fromStdString(formatDuration(r.max_ns));
    case Share:
      return QStringLiteral("%1%").arg(r.share * 100, 0, 'f', 1);
  }
  return {};
}

QVariant RangeSummaryModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case Label:
      return table_ == RangeTable::Names     ? tr("span name")
             : table_ == RangeTable::Kernels ? tr("kernel")
                                             : tr("category");
    case Count:
      return tr("count");
    case Total:
      return tr("total");
    case Mean:
      return tr("mean");
    case Max:
      return tr("max");
    case Share:
      return tr("share");
  }
  return {};
}

}  // namespace moescope::ui
