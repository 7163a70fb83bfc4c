#include "ui/query_model.h"

namespace moescope::ui {

QueryModel::QueryModel(QObject* parent) : QAbstractTableModel(parent) {}

void QueryModel::setResult(storage::QueryResult result) {
  beginResetModel();
  result_ = std::move(result);
  endResetModel();
}

int QueryModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(result_.rows.size());
}

int QueryModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(result_.columns.size());
}

QVariant QueryModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= columnCount() ||
      (role != Qt::DisplayRole && role != Qt::ToolTipRole))
    return {};
  const auto& row = result_.rows[static_cast<size_t>(index.row())];
  return static_cast<size_t>(index.column()) < row.size()
             ? QString::fromStdString(row[static_cast<size_t>(index.column())])
             : QVariant();
}

QVariant QueryModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return {};
  if (orientation == Qt::Vertical) return section + 1;
  return section >= 0 && static_cast<size_t>(section) < result_.columns.size()
             ? QString::fromStdString(result_.columns[static_cast<size_t>(section)])
             : QVariant();
}

}  // namespace moescope::ui
