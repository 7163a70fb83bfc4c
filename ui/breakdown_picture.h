// The breakdown as a picture: a stacked horizontal bar per stage (the mean of its ranks) and per rank,
// a segment per category and one for the bubble, in ms or in percent of the steps' extent; under it
// the legend, the communication table and the overlap share. Painted with plain QPainter calls (a
// filled rectangle per segment) rather than Qt Charts, so that the screen, PNG and SVG are one
// drawing and an SVG holds exactly one shape per segment.
#pragma once

#include <QPainter>
#include <QSize>
#include <QString>

#include "storage/analysis_breakdown.h"
#include "ui/breakdown_model.h"

namespace moescope::ui {

// The height a picture of this width needs.
QSize breakdownPictureSize(const storage::Breakdown& b, int width);

// Paints from (0, 0) over size; title above the bars ("ppmoe · steps 5-6").
void paintBreakdown(QPainter& p, QSize size, const storage::Breakdown& b, BreakdownUnit unit,
                    const QString& title);

// "steps 5-9", "step 3", "no steps".
QString stepsText(const std::vector<int32_t>& steps);

}  // namespace moescope::ui
