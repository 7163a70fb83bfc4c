#include "ui/curves_picture.h"

#include <QPainterPath>
#include <algorithm>
#include <array>
#include <cmath>

#include "ui/timeline_palette.h"

namespace moescope::ui {
namespace {

constexpr int kTitle = 30, kLegend = 22, kPanelHeight = 170, kGap = 14, kMargin = 12, kAxisLabels = 64;
constexpr int kColumns = 2;

}  // namespace

QColor runColor(size_t i) {
  static const std::array<QColor, 6> kColours = {QColor(0x1f, 0x77, 0xb4), QColor(0xd6, 0x27, 0x28),
                                                 QColor(0x2c, 0xa0, 0x2c), QColor(0xff, 0x7f, 0x0e),
                                                 QColor(0x94, 0x67, 0xbd), QColor(0x8c, 0x56, 0x4b)};
  return kColours[i % kColours.size()];
}

std::optional<std::pair<Curve, int32_t>> CurvesGeometry::hit(QPointF p) const {
  for (size_t i = 0; i < panels.size(); ++i) {
    const QRect& r = panels[i];
    if (!QRectF(r).contains(p)) continue;
    const double x = (p.x() - r.left()) / std::max(1, r.width() - 1);
    return std::pair(kCurves[i], static_cast<int32_t>(std::lround(firstStep + x * (lastStep - firstStep))));
  }
  return std::nullopt;
}

QSize curvesPictureSize(int width) {
  const int rows = (static_cast<int>(kCurves.size()) + kColumns - 1) / kColumns;
  return {width, kTitle + kLegend + rows * (kPanelHeight + kGap) + kMargin};
}

CurvesGeometry curvesGeometry(const std::vector<RunCurves>& runs, QSize size) {
  CurvesGeometry g;
  bool any = false;
  for (const RunCurves& r : runs) {
    if (r.steps.empty()) continue;
    g.firstStep = any ? std::min<double>(g.firstStep, r.steps.front().step) : r.steps.front().step;
    g.lastStep = any ? std::max<double>(g.lastStep, r.steps.back().step) : r.steps.back().step;
    any = true;
  }
  if (g.lastStep <= g.firstStep) g.lastStep = g.firstStep + 1;
  const int panelWidth = (size.width() - 2 * kMargin) / kColumns;
  for (size_t i = 0; i < kCurves.size(); ++i) {
    const int col = static_cast<int>(i) % kColumns, row = static_cast<int>(i) / kColumns;
    const int x = kMargin + col * panelWidth, y = kTitle + kLegend + row * (kPanelHeight + kGap);
    // The frame holds the curve's name on top and the step labels below.
    g.panels.emplace_back(x + kAxisLabels, y + 18, panelWidth - kAxisLabels - kGap, kPanelHeight - 36);
  }
  return g;
}

void paintCurves(QPainter& p, QSize size, const std::vector<RunCurves>& runs, const QString& title) {
  QFont font = p.font();
  font.setPixelSize(11);
  p.setFont(font);
  QFont bold = font;
  bold.setBold(true);
  p.fillRect(QRect(QPoint(0, 0), size), palette::kBackground);
  p.setPen(palette::kLabelText);
  p.setFont(bold);
  p.drawText(QRect(kMargin, 0, size.width() - 2 * kMargin, kTitle), Qt::AlignVCenter | Qt::AlignLeft, title);
  p.setFont(font);
  // Legend: a swatch and the name of each run.
  int x = kMargin;
  for (size_t i = 0; i < runs.size(); ++i) {
    p.fillRect(QRect(x, kTitle + 6, 14, 4), runColor(i));
    const QString name = runs[i].name + (runs[i].steps.empty() ? QStringLiteral(" (no steps)") : QString());
    p.setPen(palette::kLabelText);
    p.drawText(QRect(x + 18, kTitle, 400, 16), Qt::AlignLeft | Qt::AlignVCenter, name);
    x += 28 + p.fontMetrics().horizontalAdvance(name);
  }
  const CurvesGeometry g = curvesGeometry(runs, size);
  for (size_t c = 0; c < kCurves.size(); ++c) {
    const QRect& r = g.panels[c];
    const Curve curve = kCurves[c];
    p.setPen(palette::kLabelText);
    p.setFont(bold);
    p.drawText(QRect(r.left(), r.top() - 18, r.width(), 16), Qt::AlignLeft | Qt::AlignVCenter,
               curveName(curve));
    p.setFont(font);
    p.setPen(palette::kGrid);
    p.setBrush(Qt::NoBrush);
    p.drawRect(r.adjusted(0, 0, -1, -1));
    bool any = false;
    double lo = 0, hi = 0;
    for (const RunCurves& run : runs) {
      for (const storage::StepMetric& s : run.steps) {
        const double v = curveValue(s, curve);
        if (!std::isfinite(v)) continue;
        lo = any ? std::min(lo, v) : v;
        hi = any ? std::max(hi, v) : v;
        any = true;
      }
    }
    if (!any) continue;
    if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) hi = lo + std::max(1e-9, std::fabs(lo) * 0.01 + 1e-9);
    p.setPen(palette::kLabelText);
    p.drawText(QRect(r.left() - kAxisLabels, r.top() - 6, kAxisLabels - 4, 14),
               Qt::AlignRight | Qt::AlignVCenter, QString::number(hi, 'g', 4));
    p.drawText(QRect(r.left() - kAxisLabels, r.bottom() - 8, kAxisLabels - 4, 14),
               Qt::AlignRight | Qt::AlignVCenter, QString::number(lo, 'g', 4));
    p.drawText(QRect(r.left(), r.bottom() + 2, r.width(), 14), Qt::AlignLeft,
               QStringLiteral("step %1").arg(g.firstStep, 0, 'f', 0));
    p.drawText(QRect(r.left(), r.bottom() + 2, r.width(), 14), Qt::AlignRight,
               QStringLiteral("step %1").arg(g.lastStep, 0, 'f', 0));
    p.setRenderHint(QPainter::Antialiasing, true);
    for (size_t i = 0; i < runs.size(); ++i) {
      QPainterPath path;
      bool started = false;
      for (const storage::StepMetric& s : runs[i].steps) {
        const double v = curveValue(s, curve);
        if (!std::isfinite(v)) continue;
        const QPointF pt(r.left() + (s.step - g.firstStep) / (g.lastStep - g.firstStep) * (r.width() - 1),
                         r.bottom() - (v - lo) / (hi - lo) * (r.height() - 1));
        started ? path.lineTo(pt) : path.moveTo(pt);
        started = true;
      }
      p.setPen(QPen(runColor(i), 1.5));
      p.drawPath(path);
    }
    p.setRenderHint(QPainter::Antialiasing, false);
  }
}

}  // namespace moescope::ui
