// The MoE view of a run: the load heatmap with each layer's imbalance, dropped share and waiting
// (moe_picture.h, painted at the view's width), per step or per micro-batch, over the table of the
// layers (MoeLayerModel). Hovering a cell shows its numbers; clicking a column asks the timeline to
// show that step or micro-batch (columnClicked). Exports the picture (PNG, SVG) and the load table
// (CSV, storage::exportMoeLoadCsv), each from a button.
#pragma once

#include <QPointer>
#include <QWidget>

#include "storage/trace.h"
#include "ui/moe_model.h"
#include "ui/moe_picture.h"

class QComboBox;

namespace moescope::ui {

class RunView;

class MoeView : public QWidget {
  Q_OBJECT

 public:
  explicit MoeView(QWidget* parent = nullptr);

  // Computes the view from the run (nothing of the trace is kept).
  void setTrace(const storage::Trace& trace);
  void setPerMicrobatch(bool perMicrobatch);

  MoeLoadModel* loadModel() const { return load_; }
  MoeLayerModel* layerModel() const { return layers_; }
  QWidget* chart() const { return chart_; }
  // Where the heatmap's cells are in the chart, and a cell's tooltip at a chart point (empty off a cell).
  MoeHeatmapGeometry geometry() const;
  QString toolTipAt(QPointF chartPoint) const;

  QSize pictureSize(int width) const;
  void paintPicture(QPainter& p, QSize size) const;
  bool exportPicture(const QString& path, int width = 1400, QString* error = nullptr) const;
  bool exportCsv(const QString& path, QString* error = nullptr) const;

 signals:
  // A column was clicked: the step, and the micro-batch (storage::kNone for a step column).
  void columnClicked(int32_t step, int32_t microbatch);

 private:
  friend class MoeChart;
  void clickedAt(QPointF chartPoint);

  storage::Trace routingOnly_;  // the run's routing and step metrics, for the CSV and the grid
  MoePictureData picture_;
  MoeLoadModel* load_ = nullptr;
  MoeLayerModel* layers_ = nullptr;
  QWidget* chart_ = nullptr;
  QComboBox* columnsBox_ = nullptr;
};

// The MoE view of the run as a tab of its bottom panel (made the first time, shown every time): it
// follows the run as it loads and grows, and clicking a column shows that step (or micro-batch) in the
// run's timeline.
MoeView* showMoePanel(RunView* run);

}  // namespace moescope::ui
