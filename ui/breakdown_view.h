// The breakdown of a run's chosen steps (storage/analysis_breakdown.h): the stacked bars per stage
// and rank (breakdown_picture.h, painted at the view's width), in time or percent, beside the
// breakdown table and the communication table. It shows the steps that a time range touches:
// RunView passes the range drag-selected in the timeline; "All Steps" goes back to every step.
// Host time (the engine threads' spans) or GPU time (the kernels and copies each span launched,
// storage/gpu_time.h); a run traced on GPUs opens in GPU time.
#pragma once

#include <QWidget>
#include <vector>

#include "storage/analysis_breakdown.h"
#include "storage/trace.h"
#include "ui/breakdown_model.h"
#include "ui/time_mapping.h"

class QComboBox;
class QLabel;

namespace moescope::ui {

enum class BreakdownSource { Host, Gpu };

class BreakdownView : public QWidget {
  Q_OBJECT

 public:
  explicit BreakdownView(QWidget* parent = nullptr);

  // trace must outlive the view or the next call; shows every step, or keeps the steps shown (a
  // run that grew).
  void setTrace(const storage::Trace* trace, bool keepSteps = false);
  // The steps whose extent intersects range.
  void showRange(TimeRange range);
  void showAllSteps();
  void setUnit(BreakdownUnit unit);
  void setSource(BreakdownSource source);
  BreakdownSource source() const { return source_; }

  const storage::Breakdown& breakdown() const { return model_->breakdown(); }
  BreakdownUnit unit() const { return model_->unit(); }
  BreakdownModel* model() const { return model_; }
  CommTableModel* communicationModel() const { return comm_; }
  // The picture this view shows, width wide (for export).
  QSize pictureSize(int width) const;
  void paintPicture(QPainter& p, QSize size) const;
  QString title() const;

 signals:
  void breakdownChanged();

 private:
  void compute(const std::vector<int32_t>& steps);

  const storage::Trace* trace_ = nullptr;
  std::vector<storage::StepExtent> extents_;
  std::vector<int32_t> chosen_;  // the steps asked for; empty: all
  BreakdownModel* model_ = nullptr;
  CommTableModel* comm_ = nullptr;
  QWidget* chart_ = nullptr;
  QComboBox* unitBox_ = nullptr;
  QComboBox* sourceBox_ = nullptr;
  BreakdownSource source_ = BreakdownSource::Host;
  QLabel* stepsLabel_ = nullptr;
};

}  // namespace moescope::ui
