#include "ui/moe_picture.h"

#include <QFontMetrics>
#include <QPainterPath>
#include <algorithm>
#include <array>
#include <cmath>

#include "ui/moe_model.h"
#include "ui/timeline_palette.h"

namespace moescope::ui {
namespace {

constexpr int kTitle = 30, kLabels = 64, kSide = 330, kMargin = 12, kScale = 34, kAux = 130;
constexpr int kMaxCellHeight = 14, kMinCellHeight = 3, kMaxHeatmapHeight = 640;

int cellHeight(const storage::MoeLoadGrid& g) {
  const int rows = std::max<int>(1, static_cast<int>(g.rows()));
  return std::clamp(kMaxHeatmapHeight / rows, kMinCellHeight, kMaxCellHeight);
}

// The scale's top: at least 2 (twice the balanced share), else the hottest cell.
double scaleTop(const storage::MoeLoadGrid& g) {
  double top = 2;
  for (size_t r = 0; r < g.rows(); ++r)
    for (size_t c = 0; c < g.columns.size(); ++c) top = std::max(top, g.relativeAt(r, c));
  return top;
}

QColor mix(const QColor& a, const QColor& b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  return QColor::fromRgbF(static_cast<float>(a.redF() + (b.redF() - a.redF()) * t),
                          static_cast<float>(a.greenF() + (b.greenF() - a.greenF()) * t),
                          static_cast<float>(a.blueF() + (b.blueF() - a.blueF()) * t));
}

const QColor kIdle{0x3b, 0x4c, 0xc0}, kBalanced{0xf4, 0xf4, 0xf4}, kHot{0xb4, 0x04, 0x26};

QColor loadColor(double relative, double top) {
  if (relative <= 1) return mix(kIdle, kBalanced, relative);
  return mix(kBalanced, kHot, (relative - 1) / std::max(top - 1, 1e-9));
}

// One pixel per cell, coloured through a table of 1024 steps over [0, top]: a QColor mix per cell
// cost 60% of the view's opening on 200k cells; the table's steps are finer than the eye tells apart.
QImage heatmapImage(const storage::MoeLoadGrid& g, double top) {
  constexpr int kSteps = 1024;
  std::array<QRgb, kSteps + 1> table{};
  for (int i = 0; i <= kSteps; ++i) table[static_cast<size_t>(i)] = loadColor(top * i / kSteps, top).rgb();
  const int rows = static_cast<int>(g.rows()), cols = static_cast<int>(g.columns.size());
  QImage image(std::max(cols, 1), std::max(rows, 1), QImage::Format_RGB32);
  image.fill(palette::kBackground);
  const double scale = kSteps / top;
  for (int r = 0; r < rows; ++r) {
    auto* line = reinterpret_cast<QRgb*>(image.scanLine(r));
    for (int c = 0; c < cols; ++c) {
      const double v = g.relativeAt(static_cast<size_t>(r), static_cast<size_t>(c)) * scale;
      line[c] = table[static_cast<size_t>(std::clamp(static_cast<int>(v + 0.5), 0, kSteps))];
    }
  }
  return image;
}

}  // namespace

std::optional<std::pair<int, int>> MoeHeatmapGeometry::cellAt(QPointF p) const {
  if (rows <= 0 || columns <= 0 || !QRectF(cells).contains(p)) return std::nullopt;
  const int row = std::min(rows - 1, static_cast<int>((p.y() - cells.top()) * rows / cells.height()));
  const int col = std::min(columns - 1, static_cast<int>((p.x() - cells.left()) * columns / cells.width()));
  return std::pair(row, col);
}

QSize moePictureSize(const storage::MoeLoadGrid& g, int width) {
  return {width, kTitle + static_cast<int>(g.rows()) * cellHeight(g) + kScale + kAux + kMargin};
}

MoeHeatmapGeometry moeHeatmapGeometry(const storage::MoeLoadGrid& g, QSize size) {
  MoeHeatmapGeometry geo;
  geo.rows = static_cast<int>(g.rows());
  geo.columns = static_cast<int>(g.columns.size());
  const int width = std::max(1, size.width() - kLabels - kSide - kMargin);
  geo.cells = QRect(kLabels, kTitle, width, geo.rows * cellHeight(g));
  return geo;
}

QColor moeLoadColor(double relative, double top) {
  return loadColor(relative, top);
}

QImage moeHeatmapImage(const storage::MoeLoadGrid& g) {
  return heatmapImage(g, scaleTop(g));
}

void paintMoe(QPainter& p, QSize size, const MoePictureData& d) {
  const storage::MoeLoadGrid& g = d.grid;
  QFont font = p.font();
  font.setPixelSize(11);
  p.setFont(font);
  QFont bold = font;
  bold.setBold(true);
  const QFontMetrics fm(font);
  p.fillRect(QRect(QPoint(0, 0), size), palette::kBackground);
  p.setPen(palette::kLabelText);
  p.setFont(bold);
  p.drawText(QRect(kMargin, 0, size.width() - 2 * kMargin, kTitle), Qt::AlignVCenter | Qt::AlignLeft,
             d.title);
  p.setFont(font);
  if (g.rows() == 0 || g.columns.empty()) {
    p.drawText(QRect(kMargin, kTitle, size.width(), 40), Qt::AlignLeft | Qt::AlignTop,
               QStringLiteral("This run recorded no MoE routing (a dense model, or a run file older than "
                              "the routing tables)."));
    return;
  }
  const MoeHeatmapGeometry geo = moeHeatmapGeometry(g, size);
  const int ch = cellHeight(g);
  // Smooth scaling would blend neighbouring cells into colours that are no cell's.
  p.setRenderHint(QPainter::SmoothPixmapTransform, false);
  const double top = scaleTop(g);
  p.drawImage(geo.cells, heatmapImage(g, top));

  // Layers: their rows' labels, a line between two, and their numbers at the side.
  const auto E = static_cast<size_t>(g.experts);
  const int sideX = geo.cells.right() + 10;
  p.drawText(QRect(sideX, kTitle - 16, kSide, 14), Qt::AlignLeft | Qt::AlignVCenter,
             QStringLiteral("imbalance  CV   dropped  wait (by imbalance)"));
  for (size_t li = 0; li < g.layers.size(); ++li) {
    const int y0 = geo.cells.top() + static_cast<int>(li * E) * ch;
    const int h = static_cast<int>(E) * ch;
    p.setPen(palette::kLabelText);
    if (ch >= 10) {
      for (size_t e = 0; e < E; ++e)
        p.drawText(QRect(4, y0 + static_cast<int>(e) * ch, kLabels - 8, ch),
                   Qt::AlignRight | Qt::AlignVCenter, QStringLiteral("L%1 e%2").arg(g.layers[li]).arg(e));
    } else {
      p.drawText(QRect(4, y0, kLabels - 8, h), Qt::AlignRight | Qt::AlignVCenter,
                 QStringLiteral("layer %1").arg(g.layers[li]));
    }
    if (li > 0) {
      p.setPen(QPen(palette::kLabelText, 1));
      p.drawLine(geo.cells.left(), y0, geo.cells.right(), y0);
    }
    const auto it = std::find_if(d.stats.layers.begin(), d.stats.layers.end(),
                                 [&](const storage::MoeLayerStats& l) { return l.layer == g.layers[li]; });
    if (it != d.stats.layers.end()) {
      p.setPen(palette::kLabelText);
      p.drawText(QRect(sideX, y0, kSide, std::max(h, fm.height())), Qt::AlignLeft | Qt::AlignVCenter,
                 QStringLiteral("L%1  %2  %3  %4%  %5 ms (%6)")
                     .arg(it->layer)
                     .arg(it->imbalance, 0, 'f', 2)
                     .arg(it->cv, 0, 'f', 2)
                     .arg(100 * it->dropped_share, 0, 'f', 1)
                     .arg(static_cast<double>(it->wait_ns) / 1e6, 0, 'f', 2)
                     .arg(static_cast<double>(it->imbalance_wait_ns) / 1e6, 0, 'f', 2));
    }
  }
  p.setPen(palette::kGrid);
  p.setBrush(Qt::NoBrush);
  p.drawRect(geo.cells.adjusted(0, 0, -1, -1));

  // Colour scale, and the columns' first and last label.
  const int scaleY = geo.cells.bottom() + 8;
  p.setPen(palette::kLabelText);
  p.drawText(QRect(geo.cells.left(), scaleY, geo.cells.width(), 14), Qt::AlignLeft | Qt::AlignVCenter,
             moeColumnText(g.columns.front()));
  p.drawText(QRect(geo.cells.left(), scaleY, geo.cells.width(), 14), Qt::AlignRight | Qt::AlignVCenter,
             moeColumnText(g.columns.back()));
  const QRect bar(sideX, scaleY + 2, 160, 10);
  for (int x = 0; x < bar.width(); ++x)
    p.fillRect(QRect(bar.left() + x, bar.top(), 1, bar.height()),
               moeLoadColor(top * x / (bar.width() - 1), top));
  p.drawText(QRect(bar.left(), bar.bottom() + 1, bar.width(), 14), Qt::AlignLeft, QStringLiteral("0"));
  p.drawText(QRect(bar.left() + bar.width() / 2 - 20, bar.bottom() + 1, 40, 14), Qt::AlignHCenter,
             QString::number(top / 2, 'f', 1));
  p.drawText(QRect(bar.left(), bar.bottom() + 1, bar.width(), 14), Qt::AlignRight,
             QStringLiteral("%1×").arg(top, 0, 'f', 1));
  p.drawText(QRect(bar.right() + 6, bar.top() - 2, kSide - bar.width() - 8, 14),
             Qt::AlignLeft | Qt::AlignVCenter, QStringLiteral("× balanced share"));

  // The aux loss over steps.
  const QRect aux(geo.cells.left(), scaleY + kScale, geo.cells.width(), kAux - 30);
  p.setPen(palette::kLabelText);
  p.drawText(QRect(4, aux.top(), kLabels - 8, 14), Qt::AlignRight | Qt::AlignTop, QStringLiteral("aux loss"));
  p.setPen(palette::kGrid);
  p.drawRect(aux.adjusted(0, 0, -1, -1));
  if (d.steps.size() >= 1) {
    double lo = d.steps.front().aux_loss, hi = lo;
    for (const storage::StepMetric& s : d.steps) lo = std::min(lo, s.aux_loss), hi = std::max(hi, s.aux_loss);
    if (hi - lo < 1e-12) hi = lo + 1;
    const double s0 = d.steps.front().step, s1 = std::max(d.steps.back().step * 1.0, s0 + 1);
    QPainterPath path;
    for (size_t i = 0; i < d.steps.size(); ++i) {
      const QPointF pt(aux.left() + (d.steps[i].step - s0) / (s1 - s0) * (aux.width() - 1),
                       aux.bottom() - (d.steps[i].aux_loss - lo) / (hi - lo) * (aux.height() - 1));
      i == 0 ? path.moveTo(pt) : path.lineTo(pt);
    }
    p.setRenderHint(QPainter::Antialiasing, true);
    p.setPen(QPen(QColor(0x55, 0x2a, 0x9c), 1.5));
    p.drawPath(path);
    p.setRenderHint(QPainter::Antialiasing, false);
    p.setPen(palette::kLabelText);
    p.drawText(QRect(aux.right() + 6, aux.top(), kSide, 14), Qt::AlignLeft, QString::number(hi, 'g', 4));
    p.drawText(QRect(aux.right() + 6, aux.bottom() - 14, kSide, 14), Qt::AlignLeft,
               QString::number(lo, 'g', 4));
    p.drawText(QRect(aux.left(), aux.bottom() + 2, aux.width(), 14), Qt::AlignLeft,
               QStringLiteral("step %1").arg(d.steps.front().step));
    p.drawText(QRect(aux.left(), aux.bottom() + 2, aux.width(), 14), Qt::AlignRight,
               QStringLiteral("step %1").arg(d.steps.back().step));
  }
}

}  // namespace moescope::ui
