#include "ui/breakdown_picture.h"

#include <QFontMetrics>
#include <algorithm>
#include <cmath>

#include "ui/timeline_palette.h"

namespace moescope::ui {
namespace {

constexpr int kTitle = 30, kRow = 24, kAxis = 26, kLegend = 26, kTableRow = 20, kMargin = 12;
constexpr int kLabels = 110;

int tableHeight(const storage::Breakdown& b) {
  return kTableRow * (2 + static_cast<int>(b.communication.size())) + kTableRow;
}

// A round step for about `ticks` ticks over [0, max].
double tickStep(double max, int ticks) {
  const double raw = max / std::max(ticks, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(std::max(raw, 1e-9))));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * mag) return m * mag;
  }
  return 10 * mag;
}

}  // namespace

QString stepsText(const std::vector<int32_t>& steps) {
  if (steps.empty()) return QStringLiteral("no steps");
  if (steps.size() == 1) return QStringLiteral("step %1").arg(steps.front());
  return QStringLiteral("steps %1-%2").arg(steps.front()).arg(steps.back());
}

QSize breakdownPictureSize(const storage::Breakdown& b, int width) {
  const int bars = static_cast<int>(breakdownRows(b).size());
  return {width, kTitle + bars * kRow + kAxis + kLegend + tableHeight(b) + kMargin};
}

void paintBreakdown(QPainter& p, QSize size, const storage::Breakdown& b, BreakdownUnit unit,
                    const QString& title) {
  QFont font = p.font();
  font.setPixelSize(11);
  p.setFont(font);
  QFont bold = font;
  bold.setBold(true);
  const QFontMetrics fm(font);
  p.setRenderHint(QPainter::Antialiasing, false);
  p.fillRect(QRect(QPoint(0, 0), size), palette::kBackground);

  const auto rows = breakdownRows(b);
  const auto categories = breakdownCategories(b);
  auto value = [&](const storage::BreakdownRow& r, int64_t ns) {
    if (unit == BreakdownUnit::Percent)
      return r.extent_ns > 0 ? 100.0 * static_cast<double>(ns) / static_cast<double>(r.extent_ns) : 0.0;
    return static_cast<double>(ns) / 1e6;
  };
  double max = unit == BreakdownUnit::Percent ? 100 : 0;
  for (const auto* r : rows) {
    double total = value(*r, r->bubble_ns);
    for (auto c : categories) total += value(*r, r->busy[c]);
    max = std::max(max, total);
  }
  if (max <= 0) max = 1;
  const double step = tickStep(max, 8);
  max = std::ceil(max / step) * step;

  p.setPen(palette::kLabelText);
  p.setFont(bold);
  p.drawText(QRect(kMargin, 0, size.width() - 2 * kMargin, kTitle), Qt::AlignLeft | Qt::AlignVCenter, title);
  p.setFont(font);
  const QString note =
      unit == BreakdownUnit::Percent
          ? QStringLiteral(
                "% of the steps' extent; categories may overlap (communication beside computation)")
          : QStringLiteral(
                "ms over the chosen steps; categories may overlap (communication beside computation)");
  p.drawText(QRect(kMargin, 0, size.width() - 2 * kMargin, kTitle), Qt::AlignRight | Qt::AlignVCenter, note);

  const int x0 = kLabels, x1 = size.width() - kMargin - 20;
  const double scale = (x1 - x0) / max;
  const int barsTop = kTitle, barsBottom = kTitle + static_cast<int>(rows.size()) * kRow;
  // Grid and axis.
  for (double t = 0; t <= max + step / 2; t += step) {
    const int x = x0 + static_cast<int>(std::lround(t * scale));
    p.setPen(palette::kGrid);
    p.drawLine(x, barsTop, x, barsBottom);
    p.setPen(palette::kLabelText);
    const QString label = unit == BreakdownUnit::Percent ? QStringLiteral("%1%").arg(t, 0, 'f', 0)
                                                         : QStringLiteral("%1 ms").arg(t, 0, 'g', 4);
    p.drawText(QRect(x - 40, barsBottom + 2, 80, kAxis - 4), Qt::AlignHCenter | Qt::AlignTop, label);
  }
  // Bars: a stage's bar is full height, its ranks' bars thinner beneath it.
  for (size_t i = 0; i < rows.size(); ++i) {
    const storage::BreakdownRow& r = *rows[i];
    const bool stage = r.rank == storage::kNone;
    const int y = barsTop + static_cast<int>(i) * kRow;
    if (stage) p.fillRect(QRect(0, y, size.width(), kRow), palette::kRowAlternate);
    p.setPen(palette::kLabelText);
    p.setFont(stage ? bold : font);
    p.drawText(QRect(stage ? kMargin : kMargin + 14, y, kLabels - kMargin - 4, kRow),
               Qt::AlignLeft | Qt::AlignVCenter, breakdownRowLabel(r));
    p.setFont(font);
    const int top = y + (stage ? 3 : 6), height = kRow - (stage ? 6 : 12);
    double at = 0;
    auto segment = [&](double v, const QColor& fill, bool hatch) {
      if (v <= 0) return;
      const int left = x0 + static_cast<int>(std::lround(at * scale));
      at += v;
      const int right = x0 + static_cast<int>(std::lround(at * scale));
      if (right <= left) return;
      const QRect rect(left, top, right - left, height);
      p.fillRect(rect, fill);
      if (hatch) p.fillRect(rect, QBrush(palette::kBubbleHatch, Qt::BDiagPattern));
    };
    for (auto c : categories) segment(value(r, r.busy[c]), categoryColor(c), false);
    segment(value(r, r.bubble_ns), palette::kBubble, true);
  }

  // Legend.
  int x = kMargin;
  const int ly = barsBottom + kAxis;
  auto entry = [&](const QString& text, const QColor& fill, bool hatch) {
    const QRect sw(x, ly + (kLegend - 12) / 2, 12, 12);
    p.fillRect(sw, fill);
    if (hatch) p.fillRect(sw, QBrush(palette::kBubbleHatch, Qt::BDiagPattern));
    x += 17;
    p.setPen(palette::kLabelText);
    p.drawText(QRect(x, ly, fm.horizontalAdvance(text) + 2, kLegend), Qt::AlignLeft | Qt::AlignVCenter, text);
    x += fm.horizontalAdvance(text) + 14;
  };
  for (auto c : categories) entry(QString::fromUtf8(storage::categoryName(c)), categoryColor(c), false);
  entry(QStringLiteral("bubble (idle or waiting)"), palette::kBubble, true);

  // Communication table and overlap.
  int y = ly + kLegend;
  const int cols[] = {kMargin, kMargin + 200, kMargin + 300, kMargin + 420, kMargin + 560};
  const char* headers[] = {"communication", "count", "MiB", "time (all ranks)", "achieved bandwidth"};
  p.setFont(bold);
  for (int c = 0; c < 5; ++c)
    p.drawText(QRect(cols[c], y, 190, kTableRow), Qt::AlignLeft | Qt::AlignVCenter,
               QString::fromLatin1(headers[c]));
  p.setFont(font);
  y += kTableRow;
  for (const storage::CommStats& c : b.communication) {
    p.fillRect(QRect(cols[0], y + 5, 10, 10), categoryColor(c.kind));
    p.setPen(palette::kLabelText);
    const QString cells[] = {QString::fromUtf8(storage::categoryName(c.kind)), QString::number(c.count),
                             QString::number(static_cast<double>(c.bytes) / (1 << 20), 'f', 2),
                             QStringLiteral("%1 ms").arg(static_cast<double>(c.time_ns) / 1e6, 0, 'f', 3),
                             QStringLiteral("%1 GB/s").arg(c.gbytes_per_s, 0, 'f', 2)};
    for (int k = 0; k < 5; ++k)
      p.drawText(QRect(cols[k] + (k == 0 ? 16 : 0), y, 190, kTableRow), Qt::AlignLeft | Qt::AlignVCenter,
                 cells[k]);
    y += kTableRow;
  }
  if (b.communication.empty()) {
    p.drawText(QRect(cols[0], y, 400, kTableRow), Qt::AlignLeft | Qt::AlignVCenter,
               QStringLiteral("no communication in these steps"));
    y += kTableRow;
  }
  p.drawText(
      QRect(cols[0], y, size.width() - 2 * kMargin, kTableRow), Qt::AlignLeft | Qt::AlignVCenter,
      QStringLiteral("compute-communication overlap: %1% of %2 ms of communication overlaps computation")
          .arg(100 * b.overlap.ratio, 0, 'f', 1)
          .arg(static_cast<double>(b.overlap.comm_ns) / 1e6, 0, 'f', 3));
}

}  // namespace moescope::ui
