// The panel under the timeline that sums what is selected, as Perfetto's area selection does: the
// area selection's exact time range over its rows, or without one the visible time range over every
// row, so that it is always in step with the view. One table at a time: host time by category, GPU
// time by category, host spans by name, GPU records by kernel (count, total, mean, max, share).
#pragma once

#include <QWidget>

#include "storage/trace.h"
#include "ui/area_selection.h"
#include "ui/range_summary_model.h"

class QComboBox;
class QLabel;
class QTableView;

namespace moescope::ui {

class RangeSummaryView : public QWidget {
  Q_OBJECT

 public:
  // Past this many host spans in the range the panel asks for a smaller one (summing 10M spans takes
  // about 100 ms, too long to redo as the view moves).
  static constexpr int64_t kMaxSpans = 2'000'000;

  explicit RangeSummaryView(QWidget* parent = nullptr);

  // trace must outlive the view or the next call.
  void setTrace(const storage::Trace* trace);
  // Sums area; wholeView says it is the visible range over every row rather than a selection.
  void showArea(const AreaSelection& area, bool wholeView);
  void setTable(RangeTable table);

  RangeSummaryModel* model() const { return model_; }
  QTableView* table() const { return view_; }
  QString caption() const;

 private:
  const storage::Trace* trace_ = nullptr;
  RangeSummaryModel* model_ = nullptr;
  QLabel* caption_ = nullptr;
  QComboBox* tableBox_ = nullptr;
  QTableView* view_ = nullptr;
};

}  // namespace moescope::ui
