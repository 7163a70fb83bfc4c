#include "ui/compare_picture.h"

#include <QFontMetrics>
#include <algorithm>
#include <bitset>
#include <cmath>

#include "storage/activity.h"
#include "storage/analysis_steps.h"
#include "ui/compare_table_model.h"
#include "ui/span_access.h"
#include "ui/span_fields.h"
#include "ui/timeline_painter.h"
#include "ui/timeline_palette.h"
#include "ui/timeline_render.h"

namespace moescope::ui {
namespace {

constexpr int kBandHeader = 26, kTableRow = 22, kGap = 8;

std::vector<TimeRange> stepRanges(const storage::Trace& trace) {
  std::vector<TimeRange> out;
  for (const auto& s : trace.steps) {
    if (s.end_ns > s.start_ns) out.push_back({s.start_ns, s.end_ns});
  }
  if (out.empty()) {
    for (const auto& e : storage::stepExtents(storage::hostActivity(trace))) out.push_back({e.start, e.end});
  }
  return out;
}

int bandHeight(const storage::Trace& trace, const TimelineSummary& summary, const ComparePictureOptions& o) {
  return kBandHeader + layoutTimeline(trace, summary, {}, o.metrics).height + kGap;
}

int tableHeight(const storage::Comparison& c, const ComparePictureOptions& o) {
  return o.table ? kTableRow * (2 + static_cast<int>(c.rows.size())) + 2 * kTableRow : 0;
}

// Beside the table: a bar per run of its time per step on the mean rank by category (waits hatched),
// with a mark at its median step time, all on one scale.
void paintTimeBars(QPainter& p, const QRect& area, const storage::Comparison& c, const QFont& font,
                   const QFont& bold) {
  const QFontMetrics fm(font);
  double max = 0;
  for (const storage::RunSummary& r : c.runs) {
    int64_t total = 0;
    for (int64_t v : r.busy_per_step.ns) total += v;
    max = std::max({max, static_cast<double>(total), static_cast<double>(r.step_ns)});
  }
  if (max <= 0) return;
  p.setPen(palette::kLabelText);
  p.setFont(bold);
  p.drawText(QRect(area.left(), area.top(), area.width(), kTableRow), Qt::AlignLeft | Qt::AlignVCenter,
             QStringLiteral("time per step on the mean rank, by category"));
  p.setFont(font);
  int nameW = 0;
  for (const storage::RunSummary& r : c.runs)
    nameW = std::max(nameW, fm.horizontalAdvance(QString::fromStdString(r.name)));
  const int x0 = area.left() + nameW + 12, x1 = area.right() - 70;
  const double scale = (x1 - x0) / max;
  const int barH = 26;
  int y = area.top() + kTableRow + 6;
  for (const storage::RunSummary& r : c.runs) {
    p.setPen(palette::kLabelText);
    p.drawText(QRect(area.left(), y, nameW + 4, barH), Qt::AlignLeft | Qt::AlignVCenter,
               QString::fromStdString(r.name));
    double at = 0;
    for (int i = 0; i < storage::kCategoryCount; ++i) {
      const auto cat = static_cast<storage::Category>(i);
      const double v = static_cast<double>(r.busy_per_step[cat]);
      if (v <= 0) continue;
      const int left = x0 + static_cast<int>(std::lround(at * scale));
      at += v;
      const int right = x0 + static_cast<int>(std::lround(at * scale));
      if (right <= left) continue;
      const QRect rect(left, y, right - left, barH);
      p.fillRect(rect, categoryColor(cat));
      if (cat == storage::Category::Wait) p.fillRect(rect, QBrush(palette::kBubbleHatch, Qt::BDiagPattern));
    }
    const int mark = x0 + static_cast<int>(std::lround(static_cast<double>(r.step_ns) * scale));
    p.setPen(QPen(palette::kLabelText, 2));
    p.drawLine(mark, y - 3, mark, y + barH + 3);
    p.setPen(palette::kLabelText);
    p.drawText(QRect(mark + 4, y, 80, barH), Qt::AlignLeft | Qt::AlignVCenter,
               QStringLiteral("%1 ms").arg(static_cast<double>(r.step_ns) / 1e6, 0, 'f', 0));
    y += barH + 14;
  }
  p.drawText(
      QRect(area.left(), y, area.width(), kTableRow * 2), Qt::AlignLeft | Qt::AlignTop | Qt::TextWordWrap,
      QString::fromUtf8("Categories may overlap (communication beside computation); hatched: waiting for a "
                        "peer. The mark is the median step time."));
}

}  // namespace

std::vector<AlignedWindow> alignedWindows(std::span<const storage::Trace* const> traces, int steps) {
  std::vector<AlignedWindow> out;
  int64_t duration = 0;
  std::vector<std::vector<TimeRange>> ranges;
  for (const storage::Trace* t : traces) {
    ranges.push_back(stepRanges(*t));
    const auto& r = ranges.back();
    AlignedWindow w;
    if (r.empty()) {
      const TimeRange e = timelineExtent(*t);
      w.stepStart = e.start;
      duration = std::max(duration, e.duration());
    } else {
      // The middle of the measured steps (the first is warm-up when there are several).
      const size_t first = r.size() > 1 ? 1 : 0;
      const size_t n = static_cast<size_t>(std::max(steps, 1));
      const size_t at =
          std::min(first + (r.size() - first - 1) / 2, r.size() - std::min(n, r.size() - first));
      const size_t last = std::min(at + n, r.size()) - 1;
      w.step = t->steps.empty() ? -1 : t->steps[std::min(at, t->steps.size() - 1)].step;
      w.stepStart = r[at].start;
      duration = std::max(duration, r[last].end - r[at].start);
    }
    out.push_back(w);
  }
  if (duration <= 0) duration = 1;
  const int64_t lead = duration / 100;
  for (AlignedWindow& w : out) w.range = {w.stepStart - lead, w.stepStart + duration + 2 * lead};
  return out;
}

QSize comparePictureSize(std::span<const storage::Trace* const> traces, const storage::Comparison& comparison,
                         const ComparePictureOptions& options) {
  int h = 0;
  for (const storage::Trace* t : traces) h += bandHeight(*t, summarizeTrace(*t), options);
  return {options.width, h + kLegendStripHeight + tableHeight(comparison, options) + 4};
}

void paintCompare(QPainter& p, QSize size, std::span<const storage::Trace* const> traces,
                  const storage::Comparison& comparison, const ComparePictureOptions& options) {
  QFont font = p.font();
  font.setPixelSize(11);
  p.setFont(font);
  QFont bold = font;
  bold.setBold(true);
  QFont header = bold;
  header.setPixelSize(13);
  p.fillRect(QRect(QPoint(0, 0), size), palette::kBackground);
  const std::vector<AlignedWindow> windows = alignedWindows(traces, options.steps);

  int y = 0;
  std::bitset<storage::kCategoryCount> present;
  LegendExtras extras;
  for (size_t i = 0; i < traces.size(); ++i) {
    const storage::Trace& trace = *traces[i];
    const TimelineSummary summary = summarizeTrace(trace);
    // The band's header: the run and its figures.
    p.fillRect(QRect(0, y, size.width(), kBandHeader), QColor(0x2d, 0x33, 0x3d));
    p.setPen(Qt::white);
    p.setFont(header);
    QString name = QString::fromStdString(trace.run.name);
    if (i < comparison.runs.size() && i == comparison.baseline) name += QStringLiteral(" (baseline)");
    p.drawText(QRect(10, y, size.width() - 20, kBandHeader), Qt::AlignLeft | Qt::AlignVCenter, name);
    p.setFont(font);
    QString figures = QStringLiteral("%1 · pp %2 × tp %3 × dp %4 · %5 micro-batches")
                          .arg(QString::fromStdString(trace.run.layout))
                          .arg(trace.run.pp)
                          .arg(trace.run.tp)
                          .arg(trace.run.dp)
                          .arg(trace.run.microbatches);
    if (i < comparison.runs.size()) {
      const storage::RunSummary& s = comparison.runs[i];
      figures += QStringLiteral(" · step %1 ms (median) · %2 tok/s · bubble %3%")
                     .arg(static_cast<double>(s.step_ns) / 1e6, 0, 'f', 1)
                     .arg(s.tokens_per_s, 0, 'f', 0)
                     .arg(100 * s.bubble_share, 0, 'f', 1);
      if (s.peak_device_memory_bytes > 0)
        figures +=
            QStringLiteral(" · peak %1").arg(QString::fromStdString(formatBytes(s.peak_device_memory_bytes)));
    }
    if (windows[i].step >= 0)
      figures += QStringLiteral(" · shown from the start of step %1").arg(windows[i].step);
    p.drawText(QRect(10, y, size.width() - 20, kBandHeader), Qt::AlignRight | Qt::AlignVCenter, figures);
    y += kBandHeader;

    RenderOptions ro;
    ro.metrics = options.metrics;
    ro.legend = false;
    ro.range = windows[i].range;
    ro.origin = windows[i].stepStart;
    ro.summary = &summary;
    const int h = layoutTimeline(trace, summary, {}, options.metrics).height;
    ro.size = QSize(size.width(), h);
    p.save();
    p.translate(0, y);
    p.setClipRect(QRect(0, 0, size.width(), h));
    paintTimelinePicture(p, trace, ro);
    p.restore();
    p.setFont(font);
    const DrawList list = pictureDrawList(trace, ro);
    present |= list.categoriesShown();
    const LegendExtras e = legendExtras(list);
    extras.folded |= e.folded;
    extras.utilisation |= e.utilisation;
    extras.outside |= e.outside;
    y += h + kGap;
  }
  paintLegendStrip(p, QRect(0, y, size.width(), kLegendStripHeight), present, extras);
  y += kLegendStripHeight;
  if (!options.table || comparison.runs.empty()) return;

  // The table: a row per figure, a column per run.
  y += kTableRow / 2;
  const int labelW = 260;
  const int colW = std::min(260, (size.width() - labelW - 20) / static_cast<int>(comparison.runs.size()));
  p.setPen(palette::kLabelText);
  p.setFont(bold);
  p.drawText(QRect(10, y, labelW, kTableRow), Qt::AlignLeft | Qt::AlignVCenter, QStringLiteral("figure"));
  for (size_t r = 0; r < comparison.runs.size(); ++r) {
    QString name = QString::fromStdString(comparison.runs[r].name);
    if (r == comparison.baseline) name += QStringLiteral(" (baseline)");
    p.drawText(QRect(labelW + static_cast<int>(r) * colW, y, colW - 10, kTableRow),
               Qt::AlignRight | Qt::AlignVCenter, name);
  }
  y += kTableRow;
  p.setPen(palette::kGrid);
  p.drawLine(10, y - 1, labelW + static_cast<int>(comparison.runs.size()) * colW, y - 1);
  for (size_t row = 0; row < comparison.rows.size(); ++row) {
    const storage::CompareRow& cr = comparison.rows[row];
    if (row % 2 == 0)
      p.fillRect(QRect(10, y, labelW - 10 + static_cast<int>(comparison.runs.size()) * colW, kTableRow),
                 palette::kRowAlternate);
    p.setPen(palette::kLabelText);
    p.setFont(font);
    p.drawText(QRect(14, y, labelW - 14, kTableRow), Qt::AlignLeft | Qt::AlignVCenter,
               QString::fromStdString(cr.label));
    for (size_t r = 0; r < cr.values.size(); ++r) {
      const QRect cell(labelW + static_cast<int>(r) * colW, y, colW - 4, kTableRow);
      const bool largest = storage::isLargestDifference(comparison, row, r);
      if (largest) p.fillRect(cell.adjusted(4, 1, 0, -1), QColor(0xff, 0xe0, 0x8a));
      QString text = formatCompareValue(cr.unit, cr.values[r]);
      if (r != comparison.baseline && storage::hasValue(cr, r))
        text += QStringLiteral("  ") + formatRatio(cr.ratios[r], cr.values[comparison.baseline]);
      p.setFont(largest ? bold : font);
      p.setPen(palette::kLabelText);
      p.drawText(cell.adjusted(0, 0, -6, 0), Qt::AlignRight | Qt::AlignVCenter, text);
    }
    y += kTableRow;
  }
  const int tableTop = y - kTableRow * (1 + static_cast<int>(comparison.rows.size()));
  const int chartLeft = labelW + static_cast<int>(comparison.runs.size()) * colW + 40;
  if (size.width() - chartLeft >= 420)
    paintTimeBars(p, QRect(chartLeft, tableTop, size.width() - chartLeft - 20, y - tableTop), comparison,
                  font, bold);
  p.setFont(font);
  p.setPen(palette::kLabelText);
  p.drawText(
      QRect(10, y, size.width() - 20, kTableRow), Qt::AlignLeft | Qt::AlignVCenter,
      QString::fromUtf8("Ratios (×) to the baseline; highlighted: the largest differences. Medians and "
                        "means over the steps after the first (warm-up); time by category is per step on "
                        "the mean rank."));
}

}  // namespace moescope::ui
