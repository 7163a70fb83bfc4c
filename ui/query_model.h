// The rows of a read-only SQL query on the run file (storage/query.h) as a table.
#pragma once

#include <QAbstractTableModel>

#include "storage/query.h"

namespace moescope::ui {

class QueryModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  explicit QueryModel(QObject* parent = nullptr);

  void setResult(storage::QueryResult result);
  const storage::QueryResult& result() const { return result_; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  storage::QueryResult result_;
};

}  // namespace moescope::ui
