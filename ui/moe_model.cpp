#include "ui/moe_model.h"

#include <algorithm>

namespace moescope::ui {

QString moeColumnText(const storage::MoeGridColumn& column) {
  return column.microbatch == storage::kNone
             ? QStringLiteral("step %1").arg(column.step)
             : QStringLiteral("step %1 · micro-batch %2").arg(column.step).arg(column.microbatch);
}

MoeLoadModel::MoeLoadModel(QObject* parent) : QAbstractTableModel(parent) {}

void MoeLoadModel::setGrid(storage::MoeLoadGrid grid) {
  beginResetModel();
  grid_ = std::move(grid);
  maxRelative_ = 0;
  for (size_t r = 0; r < grid_.rows(); ++r)
    for (size_t c = 0; c < grid_.columns.size(); ++c)
      maxRelative_ = std::max(maxRelative_, grid_.relativeAt(r, c));
  endResetModel();
}

bool MoeLoadModel::perMicrobatch() const {
  return !grid_.columns.empty() && grid_.columns.front().microbatch != storage::kNone;
}

std::pair<int32_t, int32_t> MoeLoadModel::rowKey(int row) const {
  const auto E = static_cast<size_t>(grid_.experts);
  return {grid_.layers[static_cast<size_t>(row) / E], static_cast<int32_t>(static_cast<size_t>(row) % E)};
}

std::optional<int> MoeLoadModel::rowOf(int32_t layer, int32_t expert) const {
  auto it = std::lower_bound(grid_.layers.begin(), grid_.layers.end(), layer);
  if (it == grid_.layers.end() || *it != layer || expert < 0 || expert >= grid_.experts) return std::nullopt;
  return static_cast<int>(it - grid_.layers.begin()) * grid_.experts + expert;
}

int32_t MoeLoadModel::hottestExpert(int32_t layer) const {
  int32_t hot = storage::kNone;
  int64_t most = 0;
  for (int32_t e = 0; e < grid_.experts; ++e) {
    const auto row = rowOf(layer, e);
    if (!row) return storage::kNone;
    int64_t sum = 0;
    for (size_t c = 0; c < grid_.columns.size(); ++c) sum += grid_.keptAt(static_cast<size_t>(*row), c);
    if (sum > most) most = sum, hot = e;
  }
  return hot;
}

int MoeLoadModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(grid_.rows());
}

int MoeLoadModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(grid_.columns.size());
}

QVariant MoeLoadModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= columnCount()) return {};
  const auto row = static_cast<size_t>(index.row()), col = static_cast<size_t>(index.column());
  const double relative = grid_.relativeAt(row, col);
  switch (role) {
    case Qt::DisplayRole:
      return QString::number(relative, 'f', 2);
    case RelativeRole:
      return relative;
    case KeptRole:
      return static_cast<qint64>(grid_.keptAt(row, col));
    case Qt::ToolTipRole: {
      const auto [layer, expert] = rowKey(index.row());
      const size_t li = row / static_cast<size_t>(grid_.experts);
      const int64_t assignments = grid_.assignmentsAt(li, col), dropped = grid_.droppedAt(li, col);
      const double balanced = static_cast<double>(assignments) / grid_.experts;
      return QStringLiteral(
                 "layer %1 · expert %2 · %3\n%4 tokens kept, %5 × the balanced share (%6)\n"
                 "layer: imbalance %7 (max / mean), %8 of %9 assignments dropped (%10%)")
          .arg(layer)
          .arg(expert)
          .arg(moeColumnText(grid_.columns[col]))
          .arg(grid_.keptAt(row, col))
          .arg(relative, 0, 'f', 2)
          .arg(balanced, 0, 'f', 1)
          .arg(grid_.imbalanceAt(li, col), 0, 'f', 2)
          .arg(dropped)
          .arg(assignments)
          .arg(
              assignments > 0 ? 100.0 * static_cast<double>(dropped) / static_cast<double>(assignments) : 0.0,
              0, 'f', 1);
    }
    default:
      return {};
  }
}

QVariant MoeLoadModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || section < 0) return {};
  if (orientation == Qt::Vertical) {
    if (section >= rowCount()) return {};
    const auto [layer, expert] = rowKey(section);
    return QStringLiteral("L%1 e%2").arg(layer).arg(expert);
  }
  if (section >= columnCount()) return {};
  const storage::MoeGridColumn& c = grid_.columns[static_cast<size_t>(section)];
  return c.microbatch == storage::kNone ? QString::number(c.step)
                                        : QStringLiteral("%1.%2").arg(c.step).arg(c.microbatch);
}

MoeLayerModel::MoeLayerModel(QObject* parent) : QAbstractTableModel(parent) {}

void MoeLayerModel::setStats(storage::MoeStats stats) {
  beginResetModel();
  stats_ = std::move(stats);
  endResetModel();
}

int MoeLayerModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(stats_.layers.size());
}

int MoeLayerModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

QVariant MoeLayerModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount) return {};
  const storage::MoeLayerStats& l = stats_.layers[static_cast<size_t>(index.row())];
  auto ms = [](int64_t ns) { return static_cast<double>(ns) / 1e6; };
  QVariant value;
  QString text;
  switch (index.column()) {
    case Layer:
      value = l.layer;
      text = QString::number(l.layer);
      break;
    case Imbalance:
      value = l.imbalance;
      text = QString::number(l.imbalance, 'f', 2);
      break;
    case Worst:
      value = l.max_imbalance;
      text = QString::number(l.max_imbalance, 'f', 2);
      break;
    case Cv:
      value = l.cv;
      text = QString::number(l.cv, 'f', 2);
      break;
    case Dropped:
      value = l.dropped_share;
      text = QStringLiteral("%1%").arg(100 * l.dropped_share, 0, 'f', 1);
      break;
    case HotExpert:
      value = l.hot_expert;
      text = l.hot_expert == storage::kNone
                 ? QStringLiteral("–")
                 : QStringLiteral("%1 (%2%)").arg(l.hot_expert).arg(100 * l.hot_share, 0, 'f', 0);
      break;
    case WaitMs:
      value = ms(l.wait_ns);
      text = QString::number(ms(l.wait_ns), 'f', 3);
      break;
    case ImbalanceWaitMs:
      value = ms(l.imbalance_wait_ns);
      text = QString::number(ms(l.imbalance_wait_ns), 'f', 3);
      break;
    case WaitedFor:
      value = l.waited_for_rank;
      text = l.waited_for_rank == storage::kNone ? QStringLiteral("–")
                                                 : QStringLiteral("rank %1").arg(l.waited_for_rank);
      break;
    default:
      break;
  }
  if (role == ValueRole) return value;
  if (role == Qt::DisplayRole) return text;
  if (role == Qt::TextAlignmentRole)
    return index.column() == Layer ? QVariant(Qt::AlignLeft | Qt::AlignVCenter)
                                   : QVariant(Qt::AlignRight | Qt::AlignVCenter);
  return {};
}

QVariant MoeLayerModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || orientation != Qt::Horizontal) return {};
  static const char* const kHeaders[ColumnCount] = {"layer",   "imbalance",       "worst group",
                                                    "CV",      "dropped",         "hot expert",
                                                    "wait ms", "by imbalance ms", "waited for"};
  return section >= 0 && section < ColumnCount ? tr(kHeaders[section]) : QVariant();
}

}  // namespace moescope::ui
