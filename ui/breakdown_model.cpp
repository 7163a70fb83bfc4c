#include "ui/breakdown_model.h"

#include <QFont>
#include <QLocale>

#include "ui/timeline_palette.h"

namespace moescope::ui {

std::vector<const storage::BreakdownRow*> breakdownRows(const storage::Breakdown& b) {
  std::vector<const storage::BreakdownRow*> rows;
  for (const storage::BreakdownRow& stage : b.stages) {
    rows.push_back(&stage);
    for (const storage::BreakdownRow& rank : b.ranks) {
      if (rank.stage == stage.stage) rows.push_back(&rank);
    }
  }
  return rows;
}

QString breakdownRowLabel(const storage::BreakdownRow& row) {
  return row.rank == storage::kNone ? QStringLiteral("stage %1").arg(row.stage)
                                    : QStringLiteral("rank %1").arg(row.rank);
}

std::vector<storage::Category> breakdownCategories(const storage::Breakdown& b) {
  std::vector<storage::Category> out;
  for (int i = 0; i < storage::kCategoryCount; ++i) {
    const auto c = static_cast<storage::Category>(i);
    if (c == storage::Category::Wait) continue;
    for (const storage::BreakdownRow& r : b.ranks) {
      if (r.busy[c] != 0) {
        out.push_back(c);
        break;
      }
    }
  }
  return out;
}

BreakdownModel::BreakdownModel(QObject* parent) : QAbstractTableModel(parent) {}

void BreakdownModel::setBreakdown(storage::Breakdown breakdown) {
  beginResetModel();
  breakdown_ = std::move(breakdown);
  rows_ = breakdownRows(breakdown_);
  categories_ = breakdownCategories(breakdown_);
  endResetModel();
}

void BreakdownModel::setUnit(BreakdownUnit unit) {
  if (unit == unit_) return;
  unit_ = unit;
  if (!rows_.empty()) emit dataChanged(index(0, 1), index(rowCount() - 1, columnCount() - 1));
  emit headerDataChanged(Qt::Horizontal, 0, columnCount() - 1);
}

int BreakdownModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int BreakdownModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(categories_.size()) + 3;
}

double BreakdownModel::valueAt(const storage::BreakdownRow& row, int column) const {
  const int n = static_cast<int>(categories_.size());
  const int64_t ns = column <= n       ? row.busy[categories_[static_cast<size_t>(column - 1)]]
                     : column == n + 1 ? row.bubble_ns
                                       : row.extent_ns;
  if (unit_ == BreakdownUnit::Percent)
    return row.extent_ns > 0 ? 100.0 * static_cast<double>(ns) / static_cast<double>(row.extent_ns) : 0;
  return static_cast<double>(ns) / 1e6;
}

QVariant BreakdownModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid)) return {};
  const storage::BreakdownRow& row = *rows_[static_cast<size_t>(index.row())];
  const int n = static_cast<int>(categories_.size());
  if (index.column() == 0) {
    if (role == Qt::DisplayRole)
      return (row.rank == storage::kNone ? QString() : QStringLiteral("  ")) + breakdownRowLabel(row);
    if (role == Qt::ToolTipRole && row.rank == storage::kNone)
      return tr("the mean of the stage's %n rank(s)", nullptr, row.ranks);
    if (role == Qt::FontRole && row.rank == storage::kNone) {
      QFont f;
      f.setBold(true);
      return f;
    }
    return {};
  }
  const double v = valueAt(row, index.column());
  switch (role) {
    case Qt::DisplayRole:
      return unit_ == BreakdownUnit::Percent ? QStringLiteral("%1%").arg(v, 0, 'f', 1)
                                             : QStringLiteral("%1").arg(v, 0, 'f', 3);
    case Qt::TextAlignmentRole:
      return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::DecorationRole:
      if (index.column() <= n) return categoryColor(categories_[static_cast<size_t>(index.column() - 1)]);
      return index.column() == n + 1 ? QVariant(palette::kBubble) : QVariant();
    case ValueRole:
      return v;
    default:
      return {};
  }
}

QVariant BreakdownModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  const int n = static_cast<int>(categories_.size());
  if (section == 0) return tr("stage / rank");
  const QString unit = unit_ == BreakdownUnit::Percent ? QStringLiteral(" %") : QStringLiteral(" ms");
  if (section <= n)
    return QString::fromUtf8(storage::categoryName(categories_[static_cast<size_t>(section - 1)])) + unit;
  if (section == n + 1) return tr("bubble") + unit;
  if (section == n + 2) return tr("steps' extent") + unit;
  return {};
}

CommTableModel::CommTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void CommTableModel::setCommunication(std::vector<storage::CommStats> communication) {
  beginResetModel();
  rows_ = std::move(communication);
  endResetModel();
}

int CommTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int CommTableModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

QVariant CommTableModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid)) return {};
  const storage::CommStats& c = rows_[static_cast<size_t>(index.row())];
  if (role == Qt::DecorationRole && index.column() == Kind) return categoryColor(c.kind);
  if (role == Qt::TextAlignmentRole && index.column() != Kind)
    return QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role == Qt::UserRole) {
    switch (index.column()) {
      case Count:
        return static_cast<qlonglong>(c.count);
      case Bytes:
        return static_cast<qlonglong>(c.bytes);
      case Time:
        return static_cast<qlonglong>(c.time_ns);
      case Bandwidth:
        return c.gbytes_per_s;
      default:
        return QString::fromUtf8(storage::categoryName(c.kind));
    }
  }
  if (role != Qt::DisplayRole) return {};
  switch (index.column()) {
    case Kind:
      return QString::fromUtf8(storage::categoryName(c.kind));
    case Count:
      return QLocale::c().toString(static_cast<qlonglong>(c.count));
    case Bytes:
      return QStringLiteral("%1 MiB").arg(static_cast<double>(c.bytes) / (1 << 20), 0, 'f', 2);
    case Time:
      return QStringLiteral("%1 ms").arg(static_cast<double>(c.time_ns) / 1e6, 0, 'f', 3);
    case Bandwidth:
      return QStringLiteral("%1 GB/s").arg(c.gbytes_per_s, 0, 'f', 2);
    default:
      return {};
  }
}

QVariant CommTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case Kind:
      return tr("kind");
    case Count:
      return tr("count");
    case Bytes:
      return tr("bytes");
    case Time:
      return tr("time (all ranks)");
    case Bandwidth:
      return tr("achieved bandwidth");
    default:
      return {};
  }
}

}  // namespace moescope::ui
