// The MoE view as a picture (painted with plain QPainter calls, so the screen, PNG and SVG are one
// drawing): a heatmap of the load, a row per (layer, expert) and a column per step or micro-batch,
// coloured by tokens over the balanced share (blue idle, white balanced, red hot), a layer's rows
// together; beside each layer its imbalance, dropped share and the waiting at its collective; under it
// the colour scale and the aux loss over steps. The heatmap is one image scaled into its rectangle:
// 16 experts x 8 layers x 1600 micro-batch columns are 200k cells, one drawImage instead of 200k
// rectangles (and one <image> in the SVG).
#pragma once

#include <QImage>
#include <QPainter>
#include <QRect>
#include <QSize>
#include <QString>
#include <optional>
#include <vector>

#include "storage/analysis_moe.h"
#include "storage/trace.h"

namespace moescope::ui {

struct MoePictureData {
  QString title;
  storage::MoeLoadGrid grid;
  storage::MoeStats stats;
  std::vector<storage::StepMetric> steps;  // for the aux loss
};

// Where the heatmap's cells are in a picture of a size.
struct MoeHeatmapGeometry {
  QRect cells;  // every cell, row 0 at the top, column 0 at the left
  int rows = 0, columns = 0;
  // The (row, column) under a point, if it is on a cell.
  std::optional<std::pair<int, int>> cellAt(QPointF p) const;
  bool operator==(const MoeHeatmapGeometry&) const = default;
};

// The size a picture of this width needs.
QSize moePictureSize(const storage::MoeLoadGrid& grid, int width);
MoeHeatmapGeometry moeHeatmapGeometry(const storage::MoeLoadGrid& grid, QSize size);
// The colour of a cell: relative load (1 = balanced) on a scale whose red end is top.
QColor moeLoadColor(double relative, double top);
// The heatmap as an image of one pixel per cell.
QImage moeHeatmapImage(const storage::MoeLoadGrid& grid);
void paintMoe(QPainter& p, QSize size, const MoePictureData& data);

}  // namespace moescope::ui
