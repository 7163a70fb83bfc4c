// The run's curves (curves_picture.h, painted at the view's width) over the table of its steps
// (CurvesModel, the first run's). Several runs are overlaid, one colour each. Hovering a panel shows
// every run's value at the step under the pointer. Exports the picture as PNG or SVG.
#pragma once

#include <QStringList>
#include <QWidget>
#include <vector>

#include "ui/curves_model.h"
#include "ui/curves_picture.h"

namespace moescope::ui {

class CurvesView : public QWidget {
  Q_OBJECT

 public:
  explicit CurvesView(QWidget* parent = nullptr);

  void setRuns(std::vector<RunCurves> runs);
  const std::vector<RunCurves>& runs() const { return runs_; }
  CurvesModel* model() const { return model_; }
  QWidget* chart() const { return chart_; }
  CurvesGeometry geometry() const;
  // Every run's value of the curve at the step under a chart point (empty off a panel).
  QString toolTipAt(QPointF chartPoint) const;

  QString title() const;
  QSize pictureSize(int width) const { return curvesPictureSize(width); }
  void paintPicture(QPainter& p, QSize size) const { paintCurves(p, size, runs_, title()); }
  bool exportPicture(const QString& path, int width = 1400, QString* error = nullptr) const;

 private:
  std::vector<RunCurves> runs_;
  CurvesModel* model_ = nullptr;
  QWidget* chart_ = nullptr;
};

// A window with the curves of the runs (one, or several overlaid); reports a run that will not load
// in a dialog and returns nullptr.
CurvesView* openCurvesWindow(const QStringList& paths, QWidget* parent);
CurvesView* openCurvesWindow(std::vector<RunCurves> runs, QWidget* parent);

}  // namespace moescope::ui
