#include "ui/legend_model.h"

#include <QLocale>

#include "ui/timeline_palette.h"

namespace moescope::ui {

LegendModel::LegendModel(QObject* parent) : QAbstractListModel(parent) {}

void LegendModel::setHidden(std::bitset<storage::kCategoryCount> hidden) {
  if (hidden == hidden_) return;
  hidden_ = hidden;
  emit dataChanged(index(0), index(rowCount() - 1), {Qt::CheckStateRole});
  emit hiddenChanged();
}

void LegendModel::countSpans(const storage::Trace& trace) {
  counts_.fill(0);
  for (const auto& c : trace.spans) {
    for (const auto cat : c.category) {
      const auto i = static_cast<size_t>(cat);
      if (i < counts_.size()) ++counts_[i];
    }
  }
  counted_ = true;
  emit dataChanged(index(0), index(rowCount() - 1), {Qt::DisplayRole, Qt::ToolTipRole});
}

int LegendModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : storage::kCategoryCount;
}

QVariant LegendModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() < 0 || index.row() >= rowCount()) return {};
  const auto row = static_cast<size_t>(index.row());
  const storage::Category c = categoryAt(index.row());
  const QString name = QString::fromUtf8(storage::categoryName(c));
  switch (role) {
    case Qt::DisplayRole:
      return counted_ ? QStringLiteral("%1  (%2)")
                            .arg(name, QLocale().toString(static_cast<qlonglong>(counts_[row])))
                      : name;
    case Qt::DecorationRole:
      return categoryColor(c);
    case Qt::CheckStateRole:
      return hidden_.test(row) ? Qt::Unchecked : Qt::Checked;
    case Qt::ToolTipRole:
      return hidden_.test(row) ? tr("%1: hidden, check to show").arg(name)
                               : tr("%1: uncheck to hide").arg(name);
    default:
      return {};
  }
}

bool LegendModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (!index.isValid() || index.row() < 0 || index.row() >= rowCount() || role != Qt::CheckStateRole)
    return false;
  const bool hide = value.value<Qt::CheckState>() != Qt::Checked;
  const auto row = static_cast<size_t>(index.row());
  if (hidden_.test(row) == hide) return true;
  hidden_.set(row, hide);
  emit dataChanged(index, index, {Qt::CheckStateRole, Qt::ToolTipRole});
  emit hiddenChanged();
  return true;
}

Qt::ItemFlags LegendModel::flags(const QModelIndex& index) const {
  if (!index.isValid()) return Qt::NoItemFlags;
  return Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsUserCheckable | Qt::ItemNeverHasChildren;
}

}  // namespace moescope::ui
