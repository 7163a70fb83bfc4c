#include "ui/compare_table_model.h"

#include <QColor>
#include <QFont>

namespace moescope::ui {

QString formatCompareValue(storage::CompareUnit unit, double value) {
  switch (unit) {
    case storage::CompareUnit::Milliseconds:
      return QStringLiteral("%1 ms").arg(value, 0, 'f', 3);
    case storage::CompareUnit::TokensPerSecond:
      return QStringLiteral("%1 tok/s").arg(value, 0, 'f', 0);
    case storage::CompareUnit::Share:
      return QStringLiteral("%1%").arg(100 * value, 0, 'f', 1);
    case storage::CompareUnit::Bytes:
      if (value == 0) return QString::fromUtf8("–");  // not recorded (storage::hasValue)
      if (value >= (1 << 30)) return QStringLiteral("%1 GiB").arg(value / (1 << 30), 0, 'f', 2);
      return QStringLiteral("%1 MiB").arg(value / (1 << 20), 0, 'f', 2);
    case storage::CompareUnit::Ratio:
      return QStringLiteral("%1").arg(value, 0, 'f', 2);
  }
  return {};
}

QString formatRatio(double ratio, double baseValue) {
  return baseValue != 0 ? QString::fromUtf8("×%1").arg(ratio, 0, 'f', 2) : QString::fromUtf8("–");
}

CompareTableModel::CompareTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void CompareTableModel::setRuns(std::vector<storage::RunSummary> runs, size_t baseline) {
  beginResetModel();
  runs_ = std::move(runs);
  comparison_ = storage::compareRuns(runs_, baseline);
  endResetModel();
}

void CompareTableModel::setBaseline(size_t baseline) {
  if (runs_.empty()) return;
  comparison_ = storage::compareRuns(runs_, baseline);
  emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
  emit headerDataChanged(Qt::Horizontal, 1, columnCount() - 1);
}

int CompareTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(comparison_.rows.size());
}

int CompareTableModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : 1 + static_cast<int>(comparison_.runs.size());
}

QVariant CompareTableModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid)) return {};
  const auto& row = comparison_.rows[static_cast<size_t>(index.row())];
  if (index.column() == 0) {
    if (role == Qt::DisplayRole) return QString::fromStdString(row.label);
    if (role == Qt::ToolTipRole && row.unit == storage::CompareUnit::Milliseconds && row.key != "step_time")
      return tr("per step on the mean rank (the first step left out as warm-up)");
    return {};
  }
  const auto run = static_cast<size_t>(index.column() - 1);
  const bool largest = storage::isLargestDifference(comparison_, static_cast<size_t>(index.row()), run);
  switch (role) {
    case Qt::DisplayRole: {
      QString text = formatCompareValue(row.unit, row.values[run]);
      if (run != comparison_.baseline && storage::hasValue(row, run))
        text += QStringLiteral("  ") + formatRatio(row.ratios[run], row.values[comparison_.baseline]);
      return text;
    }
    case Qt::TextAlignmentRole:
      return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::BackgroundRole:
      return largest ? QVariant(QColor(0xff, 0xe0, 0x8a)) : QVariant();
    case Qt::FontRole: {
      if (!largest) return {};
      QFont f;
      f.setBold(true);
      return f;
    }
    case Qt::ToolTipRole:
      return largest ? tr("one of the largest differences: %1% of the baseline's step time")
                           .arg(100 * row.weights[run], 0, 'f', 1)
                     : QVariant();
    case ValueRole:
      return row.values[run];
    case RatioRole:
      return row.ratios[run];
    case LargestRole:
      return largest;
    default:
      return {};
  }
}

QVariant CompareTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  if (section == 0) return tr("figure");
  const auto run = static_cast<size_t>(section - 1);
  if (run >= comparison_.runs.size()) return {};
  QString name = QString::fromStdString(comparison_.runs[run].name);
  if (run == comparison_.baseline) name += tr(" (baseline)");
  return name;
}

}  // namespace moescope::ui
