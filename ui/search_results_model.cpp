#include "ui/search_results_model.h"

#include <QLocale>

#include "ui/span_access.h"
#include "ui/time_format.h"

namespace moescope::ui {

SearchResultsModel::SearchResultsModel(QObject* parent) : QAbstractTableModel(parent) {}

void SearchResultsModel::setSearch(const storage::Trace* trace, const SpanSearch* search) {
  beginResetModel();
  trace_ = trace;
  search_ = search;
  origin_ = trace ? timelineExtent(*trace).start : 0;
  endResetModel();
}

SpanRef SearchResultsModel::spanAt(int row) const {
  if (!search_ || row < 0 || row >= rowCount()) return {};
  return search_->matches()[static_cast<size_t>(row)];
}

int SearchResultsModel::rowOf(SpanRef span) const {
  if (!trace_ || !search_) return -1;
  const auto i = search_->indexOf(*trace_, span);
  return i ? static_cast<int>(*i) : -1;
}

int SearchResultsModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() || !search_ ? 0 : static_cast<int>(search_->matches().size());
}

int SearchResultsModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

QVariant SearchResultsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || (role != Qt::DisplayRole && role != Qt::ToolTipRole))
    return {};
  const SpanRef r = spanAt(index.row());
  const auto& c = trace_->spans[static_cast<size_t>(r.track)];
  switch (index.column()) {
    case Index:
      return QLocale().toString(index.row() + 1);
    case Name:
      return QString::fromUtf8(trace_->name(c.name[r.index]));
    case Track:
      return static_cast<size_t>(r.track) < trace_->tracks.size()
                 ? QString::fromStdString(trace_->tracks[static_cast<size_t>(r.track)].name)
                 : QString::number(r.track);
    case Start:
      return QString::fromStdString(formatExact(c.start[r.index] - origin_));
    case Duration:
      return QString::fromStdString(formatDuration(c.durationAt(r.index)));
  }
  return {};
}

QVariant SearchResultsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case Index:
      return tr("#");
    case Name:
      return tr("name");
    case Track:
      return tr("track");
    case Start:
      return tr("start");
    case Duration:
      return tr("duration");
  }
  return {};
}

}  // namespace moescope::ui
