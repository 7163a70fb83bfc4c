// The breakdown (storage/analysis_breakdown.h) as Qt models: BreakdownModel has a row per stage (the
// mean of its ranks) followed by a row per rank of the stage, and a column per category that occurs
// (waits are left out: they are bubble time), then the bubble and the steps' extent; in time (ms) or
// in percent of the extent. CommTableModel has a row per communication kind: count, bytes, time and
// achieved bandwidth.
#pragma once

#include <QAbstractTableModel>
#include <vector>

#include "storage/analysis_breakdown.h"

namespace moescope::ui {

enum class BreakdownUnit { Time, Percent };

// The rows in the order the table and the chart show them: each stage, then its ranks.
std::vector<const storage::BreakdownRow*> breakdownRows(const storage::Breakdown& b);
// "stage 1" or "rank 3".
QString breakdownRowLabel(const storage::BreakdownRow& row);
// The categories that occur in any row, waits left out, in category order.
std::vector<storage::Category> breakdownCategories(const storage::Breakdown& b);

class BreakdownModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Role { ValueRole = Qt::UserRole };  // the value in the unit (ms or percent) as a double

  explicit BreakdownModel(QObject* parent = nullptr);

  void setBreakdown(storage::Breakdown breakdown);
  const storage::Breakdown& breakdown() const { return breakdown_; }
  void setUnit(BreakdownUnit unit);
  BreakdownUnit unit() const { return unit_; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  double valueAt(const storage::BreakdownRow& row, int column) const;

  storage::Breakdown breakdown_;
  std::vector<const storage::BreakdownRow*> rows_;
  std::vector<storage::Category> categories_;
  BreakdownUnit unit_ = BreakdownUnit::Time;
};

class CommTableModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { Kind, Count, Bytes, Time, Bandwidth, ColumnCount };

  explicit CommTableModel(QObject* parent = nullptr);

  void setCommunication(std::vector<storage::CommStats> communication);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  std::vector<storage::CommStats> rows_;
};

}  // namespace moescope::ui
