// The run's curves as a picture: a panel per curve (loss, cross-entropy, aux loss, tokens/s, step
// time) over steps, every run a line of its own colour (overlaid when several runs are compared), a
// legend of the runs on top. Plain QPainter calls: the screen, PNG and SVG are one drawing.
#pragma once

#include <QPainter>
#include <QRect>
#include <QSize>
#include <optional>
#include <vector>

#include "ui/curves_model.h"

namespace moescope::ui {

// Where each curve's panel is, and the steps its x axis spans.
struct CurvesGeometry {
  std::vector<QRect> panels;  // by kCurves order; the plot area inside the panel's frame
  double firstStep = 0, lastStep = 1;
  // The curve and the step nearest the point, when it is over a panel.
  std::optional<std::pair<Curve, int32_t>> hit(QPointF p) const;
};

QSize curvesPictureSize(int width);
CurvesGeometry curvesGeometry(const std::vector<RunCurves>& runs, QSize size);
// The colour of run i of a picture.
QColor runColor(size_t i);
void paintCurves(QPainter& p, QSize size, const std::vector<RunCurves>& runs, const QString& title);

}  // namespace moescope::ui
