#include "ui/span_details_model.h"

namespace moescope::ui {

SpanDetailsModel::SpanDetailsModel(QObject* parent) : QAbstractTableModel(parent) {}

void SpanDetailsModel::setSpan(const storage::Trace* trace, std::optional<SpanRef> span) {
  beginResetModel();
  span_.reset();
  fields_.clear();
  if (trace && span && span->valid() && static_cast<size_t>(span->track) < trace->spans.size() &&
      span->index < trace->spans[static_cast<size_t>(span->track)].size()) {
    span_ = span;
    fields_ = spanFields(*trace, *span, true);
  }
  endResetModel();
}

int SpanDetailsModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(fields_.size());
}

int SpanDetailsModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : 2;
}

QVariant SpanDetailsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= 2) return {};
  const SpanField& f = fields_[static_cast<size_t>(index.row())];
  if (role == Qt::DisplayRole || role == Qt::ToolTipRole) {
    return QString::fromStdString(index.column() == 0 ? f.label : f.value);
  }
  return {};
}

QVariant SpanDetailsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  return section == 0 ? tr("field") : section == 1 ? tr("value") : QVariant();
}

}  // namespace moescope::ui
