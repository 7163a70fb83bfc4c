// One table of an area selection's summary (storage/analysis_range.h) as a Qt model: a row per
// category, span name or kernel; columns label, count, total, mean, max, share. ValueRole holds the
// number behind each cell (ns, count, share), so a proxy can sort by it.
#pragma once

#include <QAbstractTableModel>
#include <vector>

#include "storage/analysis_range.h"

namespace moescope::ui {

enum class RangeTable { HostCategories, GpuCategories, Names, Kernels };

// The rows of one table of a summary.
const std::vector<storage::RangeRow>& rangeRows(const storage::RangeSummary& s, RangeTable table);

class RangeSummaryModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { Label, Count, Total, Mean, Max, Share, ColumnCount };
  enum Role { ValueRole = Qt::UserRole };

  explicit RangeSummaryModel(QObject* parent = nullptr);

  void setSummary(storage::RangeSummary summary);
  const storage::RangeSummary& summary() const { return summary_; }
  void setTable(RangeTable table);
  RangeTable table() const { return table_; }
  const std::vector<storage::RangeRow>& rows() const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  storage::RangeSummary summary_;
  RangeTable table_ = RangeTable::HostCategories;
};

}  // namespace moescope::ui
