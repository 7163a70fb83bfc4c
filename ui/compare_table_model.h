// The compare table (storage/analysis_compare.h) as a Qt model: a row per figure (step time,
// tokens/s, bubble share, time by category), a column per run after the figure's name. A cell shows
// the value and its ratio to the baseline; the largest differences are highlighted (background and
// bold). Changing the baseline recomputes the comparison from the runs' summaries.
#pragma once

#include <QAbstractTableModel>
#include <vector>

#include "storage/analysis_compare.h"

namespace moescope::ui {

class CompareTableModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  // Roles beside the display text: the figure's value in its unit, and the ratio (0 for none).
  enum Role { ValueRole = Qt::UserRole, RatioRole, LargestRole };

  explicit CompareTableModel(QObject* parent = nullptr);

  void setRuns(std::vector<storage::RunSummary> runs, size_t baseline = 0);
  void setBaseline(size_t baseline);
  size_t baseline() const { return comparison_.baseline; }
  const storage::Comparison& comparison() const { return comparison_; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  std::vector<storage::RunSummary> runs_;
  storage::Comparison comparison_;
};

// "12.345 ms", "15234 tok/s", "31.2%".
QString formatCompareValue(storage::CompareUnit unit, double value);
// "×1.50", or "–" where the baseline's value is 0 (no ratio).
QString formatRatio(double ratio, double baseValue);

}  // namespace moescope::ui
