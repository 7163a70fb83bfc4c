// The matches of a search as a table: a row per matching span in time order (what "i of N" counts),
// with its name, track, start (exact, from the run's first span) and duration.
#pragma once

#include <QAbstractTableModel>

#include "storage/trace.h"
#include "ui/span_search.h"

namespace moescope::ui {

class SearchResultsModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { Index, Name, Track, Start, Duration, ColumnCount };

  explicit SearchResultsModel(QObject* parent = nullptr);

  // trace and search must outlive the model or the next call; call again when the query changes.
  void setSearch(const storage::Trace* trace, const SpanSearch* search);
  SpanRef spanAt(int row) const;
  // The row of span, or -1.
  int rowOf(SpanRef span) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  const storage::Trace* trace_ = nullptr;
  const SpanSearch* search_ = nullptr;
  int64_t origin_ = 0;
};

}  // namespace moescope::ui
