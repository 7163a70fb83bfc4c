#include "ui/timeline_painter.h"

#include <QFontMetrics>
#include <algorithm>
#include <array>
#include <cmath>

#include "ui/counter_rows.h"
#include "ui/label_cache.h"
#include "ui/span_access.h"
#include "ui/time_format.h"
#include "ui/timeline_palette.h"

namespace moescope::ui {
namespace {

using storage::Phase;

constexpr double kMinLabelPx = 14;

QString qs(const std::string& s) {
  return QString::fromStdString(s);
}

// The ruler: tick labels in its upper band (kTickBand px), the steps in the band below.
constexpr int kTickBand = 22;

void paintRuler(QPainter& p, const TimelineLayout& layout, const DrawList& list, int width, int rowsBottom,
                int64_t origin) {
  const int lw = layout.metrics.labelWidth, rh = layout.metrics.rulerHeight;
  int64_t step = 1;
  const auto ticks = rulerTicks(list.mapping, origin, 110, &step);
  const int64_t magnitude =
      std::max(std::llabs(list.mapping.range.end - origin), std::llabs(list.mapping.range.start - origin));
  for (const auto& t : ticks) {
    const int x = lw + static_cast<int>(std::lround(t.x));
    if (x < lw) continue;
    if (t.major) {
      p.setPen(palette::kGrid);
      p.drawLine(x, rh, x, rowsBottom);
      p.setPen(palette::kLabelText);
      p.drawLine(x, kTickBand - 8, x, kTickBand);
      p.drawText(QRect(x + 3, 0, 200, kTickBand - 2), Qt::AlignLeft | Qt::AlignVCenter,
                 qs(formatTick(t.t - origin, step, magnitude)));
    } else {
      p.setPen(palette::kLabelText);
      p.drawLine(x, kTickBand - 3, x, kTickBand);
    }
  }
  p.setPen(palette::kGrid);
  p.drawLine(lw, kTickBand, width, kTickBand);
  p.drawLine(lw, rh - 1, width, rh - 1);
}

void paintSteps(QPainter& p, const storage::Trace& trace, const TimelineLayout& layout, const TimeMapping& m,
                int rowsBottom) {
  if (trace.steps.empty()) return;
  const int lw = layout.metrics.labelWidth, rh = layout.metrics.rulerHeight;
  const QPen dashed(QColor(0x55, 0x5b, 0x66), 1, Qt::DashLine);
  const QFontMetrics fm(p.font());
  // Steps closer than a few pixels would only grey the ruler out: shown from 6 px per step.
  const auto visible = std::count_if(
      trace.steps.begin(), trace.steps.end(),
      [&](const storage::StepMetric& s) { return s.end_ns > m.range.start && s.start_ns < m.range.end; });
  if (visible > 0 && m.width / static_cast<double>(visible) < 6) return;
  // Boundaries across the rows only where steps are wide enough not to hatch the picture.
  const bool boundaries = visible == 0 || m.width / static_cast<double>(visible) >= 40;
  for (const auto& s : trace.steps) {
    if (s.end_ns <= m.range.start || s.start_ns >= m.range.end) continue;
    const double x0 = m.toX(s.start_ns), x1 = m.toX(s.end_ns);
    const QRectF band(lw + std::max(x0, -2.0), kTickBand + 2, std::min(x1, m.width + 2) - std::max(x0, -2.0),
                      rh - kTickBand - 5);
    p.fillRect(band, s.step % 2 ? QColor(0xd5, 0xdb, 0xe6) : QColor(0xc9, 0xd3, 0xe2));
    if (x0 >= 0 && boundaries) {
      p.setPen(dashed);
      p.drawLine(QPointF(lw + x0, kTickBand), QPointF(lw + x0, rowsBottom));
    }
    QString label = QStringLiteral("step %1").arg(s.step);
    if (band.width() > fm.horizontalAdvance(label) * 3)
      label += QStringLiteral("  ·  ") + qs(formatDuration(s.end_ns - s.start_ns));
    if (band.width() > fm.horizontalAdvance(label) + 8) {
      p.setPen(palette::kLabelText);
      p.drawText(band, Qt::AlignCenter, label);
    }
  }
}

}  // namespace

DrawOptions drawOptionsFor(const TimelineLayout& layout, QSize size, int scrollY, int legendHeight) {
  DrawOptions o;
  o.yTop = scrollY + layout.metrics.rulerHeight;
  o.yBottom = scrollY + size.height() - legendHeight;
  return o;
}

QString boxLabel(const storage::Trace& trace, const DrawItem& item, const QFontMetrics& fm, double width) {
  if (width < kMinLabelPx) return {};
  const BoxLabelTexts texts = boxLabelTexts(trace, item);
  if (!texts.full.isEmpty() && fm.horizontalAdvance(texts.full) + 6 <= width) return texts.full;
  if (!texts.brief.isEmpty() && fm.horizontalAdvance(texts.brief) + 4 <= width) return texts.brief;
  return {};
}

void paintTimeline(QPainter& p, QSize size, const storage::Trace& trace, const TimelineLayout& layout,
                   const DrawList& list, const PaintState& state) {
  const int width = size.width();
  const int rowsBottom = size.height() - state.legendHeight;
  const int lw = layout.metrics.labelWidth, rh = layout.metrics.rulerHeight;
  const TimeMapping& m = list.mapping;
  p.setRenderHint(QPainter::Antialiasing, false);
  p.setRenderHint(QPainter::TextAntialiasing, true);
  p.fillRect(QRect(0, 0, width, size.height()), palette::kBackground);

  const QFontMetrics fm(p.font());
  LabelCache localLabels;
  LabelCache& labels = state.labels ? *state.labels : localLabels;
  const QBrush bubbleHatch(palette::kBubbleHatch, Qt::BDiagPattern);
  const QBrush backwardHatch(palette::kBackwardHatch, Qt::FDiagPattern);

  // Rows: backgrounds and labels.
  p.save();
  p.setClipRect(QRect(0, rh, width, rowsBottom - rh));
  const auto [r0, r1] = layout.rowsIn(state.scrollY + rh, state.scrollY + rowsBottom);
  for (int r = r0; r < r1; ++r) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
    const int y = row.y - state.scrollY;
    if (row.kind == TimelineRow::Kind::Group) {
      p.fillRect(QRect(0, y, width, row.height), palette::kGroupHeader);
      const storage::RankInfo* rank = trace.rank(row.rank);
      storage::RankInfo fallback;
      fallback.rank = row.rank;
      const QString label =
          QString::fromUtf8(row.collapsed ? "▸ " : "▾ ") + qs(rankLabel(rank ? *rank : fallback));
      p.setPen(palette::kLabelText);
      const QFont normal = p.font();
      QFont bold = normal;
      bold.setBold(true);
      p.setFont(bold);
      p.drawText(QRect(6, y, lw - 10, row.height), Qt::AlignLeft | Qt::AlignVCenter,
                 QFontMetrics(bold).elidedText(label, Qt::ElideRight, lw - 10));
      p.setFont(normal);
    } else if (row.kind == TimelineRow::Kind::Counters) {
      size_t n = 0;
      for (const auto& t : trace.tracks) n += t.rank == row.rank && t.kind == storage::TrackKind::Counter;
      p.setPen(palette::kLabelText);
      p.drawText(QRect(10, y, lw - 14, row.height), Qt::AlignLeft | Qt::AlignVCenter,
                 QString::fromUtf8(row.collapsed ? "▸ " : "▾ ") + QStringLiteral("counters (%1)").arg(n));
    } else {
      if (r % 2 == 0) p.fillRect(QRect(0, y, width, row.height), palette::kRowAlternate);
      const QString name = static_cast<size_t>(row.track) < trace.tracks.size()
                               ? QString::fromStdString(trace.tracks[static_cast<size_t>(row.track)].name)
                               : QString::number(row.track);
      p.setPen(palette::kLabelText);
      p.drawText(QRect(22, y, lw - 28, row.height), Qt::AlignLeft | Qt::AlignVCenter,
                 fm.elidedText(name, Qt::ElideRight, lw - 28));
    }
  }
  p.restore();

  // The ruler and the step marks span the ruler and the rows; then the rows' contents.
  p.fillRect(QRect(0, 0, width, rh), palette::kRulerBackground);
  p.save();
  p.setClipRect(QRect(lw, 0, width - lw, rowsBottom));
  paintRuler(p, layout, list, width, rowsBottom, state.origin);
  paintSteps(p, trace, layout, m, rowsBottom);
  p.restore();
  p.save();
  p.setClipRect(QRect(0, 0, lw, rh));
  p.setPen(palette::kLabelText);
  p.drawText(QRect(8, 0, lw - 12, rh), Qt::AlignLeft | Qt::AlignVCenter,
             QStringLiteral("view ") + qs(formatDuration(m.range.duration())));
  p.restore();
  p.save();
  p.setClipRect(QRect(lw, rh, width - lw, rowsBottom - rh));
  for (int r = r0; r < r1; ++r) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
    if (row.kind == TimelineRow::Kind::Counter)
      paintCounterRow(p, trace, row.track, QRect(lw, row.y - state.scrollY, width - lw, row.height), m);
  }

  // Boxes snap to whole pixels: the raster engine's fast path, and crisp edges.
  auto boxRect = [&](const TimelineRow& row, double x0, double x1) {
    const int top = layout.boxTop(row) - state.scrollY, bottom = layout.boxBottom(row) - state.scrollY;
    const int left = static_cast<int>(std::floor(lw + x0));
    const int right = std::max(static_cast<int>(std::floor(lw + x1)), left + 1);
    return QRect(left, top, right - left, bottom - top);
  };
  // Fills by category: [0] forward or none, [1] backward, [2] a folded block of that category alone.
  std::array<std::array<QColor, 3>, storage::kCategoryCount> fills;
  for (int i = 0; i < storage::kCategoryCount; ++i) {
    const auto cat = static_cast<storage::Category>(i);
    fills[static_cast<size_t>(i)] = {spanFill(cat, Phase::Forward), spanFill(cat, Phase::Backward),
                                     spanFill(cat, Phase::Forward).lighter(125)};
  }

  // Rank headers: the schedule's stretches, forward light and backward dark, with their micro-batch.
  for (const auto& ph : list.phases) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(ph.row)];
    const int top = row.y - state.scrollY + 3, h = row.height - 6;
    const int left = static_cast<int>(std::floor(lw + ph.x0));
    const int right = std::max(static_cast<int>(std::floor(lw + ph.x1)), left + 1);
    const QRect rect(left, top, right - left > 4 ? right - left - 1 : right - left, h);
    const QColor& fill = ph.phase == Phase::Backward || ph.phase == Phase::BackwardWeight
                             ? palette::kBackwardStretch
                         : ph.phase == Phase::Optimizer ? palette::kOptimizerStretch
                                                        : palette::kForwardStretch;
    p.fillRect(rect, fill);
    if (rect.width() >= kMinLabelPx) {
      const QString label = QString::fromStdString(phaseLabel(ph.phase, ph.microbatch, ph.chunk));
      if (!label.isEmpty()) {
        const QStaticText& text = labels.text(label, p.font());
        const double tw = text.size().width();
        if (tw + 4 <= rect.width()) {
          p.setPen(textOn(fill));
          p.drawStaticText(QPointF(rect.left() + (rect.width() - tw) / 2,
                                   rect.top() + (rect.height() - fm.height()) / 2.0),
                           text);
        }
      }
    }
  }

  for (const auto& b : list.bubbles) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(b.row)];
    const QRect rect = boxRect(row, b.x0, b.x1);
    p.fillRect(rect, palette::kBubble);
    p.fillRect(rect, bubbleHatch);
  }

  for (const auto& item : list.items) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(item.row)];
    const double w = item.x1 - item.x0;
    // Boxes wide enough keep a one-pixel gap to their neighbour, so that touching spans read apart.
    const QRect rect = boxRect(row, item.x0, w >= 5 ? item.x1 - 1 : item.x1);
    const auto& shades = fills[static_cast<size_t>(item.category) % fills.size()];
    // A folded block never passes for one span: grey when its spans are of several categories, else
    // a paler shade of their one category.
    const QColor& fill = item.kind == DrawKind::Folded   ? (item.mixed ? palette::kFolded : shades[2])
                         : item.phase == Phase::Backward ? shades[1]
                                                         : shades[0];
    p.fillRect(rect, fill);
    if (item.phase == Phase::Backward && item.category != storage::Category::Wait && !item.mixed && w >= 6) {
      p.fillRect(rect, backwardHatch);
    }
    // Waiting for a peer is bubble time too: hatched like the bubbles around it.
    if (item.category == storage::Category::Wait && item.kind == DrawKind::Span && w >= 6)
      p.fillRect(rect, bubbleHatch);
    if (item.kind == DrawKind::Folded && w >= 6) {
      // A folded block: a darker bar along its bottom marks it as many spans.
      p.fillRect(QRect(rect.left(), rect.bottom() - 1, rect.width(), 2),
                 item.mixed ? fill.darker(140) : shades[1]);
    }
    if (w >= kMinLabelPx) {
      // The same choice as boxLabel, from the cache's measured texts.
      const LabelCache::Entry& label = labels.get(trace, item, p.font());
      const QStaticText* text = nullptr;
      double textWidth = 0;
      if (label.fullWidth > 0 && label.fullWidth + 6 <= rect.width()) {
        text = &label.full;
        textWidth = label.fullWidth;
      } else if (label.briefWidth > 0 && label.briefWidth + 4 <= rect.width()) {
        text = &label.brief;
        textWidth = label.briefWidth;
      }
      if (text) {
        // Labels stay inside the visible part of a box that starts left of the view.
        const QRect tr = rect.intersected(QRect(lw, rect.top(), width - lw, rect.height()));
        p.setPen(item.kind == DrawKind::Folded ? palette::kLabelText : textOn(fill));
        p.drawStaticText(
            QPointF(tr.left() + (tr.width() - textWidth) / 2, tr.top() + (tr.height() - fm.height()) / 2.0),
            *text);
      }
    }
  }

  // Selection and hover: an outline at the span's true extent, at least 3 px wide.
  auto outline = [&](SpanRef ref, const QColor& color, int penWidth) {
    const int rowIndex = layout.rowOfTrack(ref.track);
    if (rowIndex < 0 || static_cast<size_t>(ref.track) >= trace.spans.size()) return;
    const auto& c = trace.spans[static_cast<size_t>(ref.track)];
    if (ref.index >= c.size()) return;
    double x0 = m.toX(c.start[ref.index]), x1 = m.toX(c.endAt(ref.index));
    if (x1 - x0 < 3) {
      const double mid = (x0 + x1) / 2;
      x0 = mid - 1.5;
      x1 = mid + 1.5;
    }
    x0 = std::max(x0, -4.0);
    x1 = std::min(x1, m.width + 4);
    const QRect rect = boxRect(layout.rows[static_cast<size_t>(rowIndex)], x0, x1).adjusted(-1, -1, 0, 0);
    p.setPen(QPen(color, penWidth));
    p.setBrush(Qt::NoBrush);
    p.drawRect(rect);
  };
  if (state.hovered && state.hovered != state.selected)
    outline(*state.hovered, QColor(0x40, 0x40, 0x40, 160), 1);
  if (state.selected) outline(*state.selected, palette::kSelection, 2);

  if (state.rangeSelection) {
    const double x0 = m.toX(state.rangeSelection->start), x1 = m.toX(state.rangeSelection->end);
    const QRectF rect(lw + std::min(x0, x1), rh, std::fabs(x1 - x0), rowsBottom - rh);
    p.fillRect(rect, palette::kRangeSelect);
    p.setPen(QColor(0x33, 0x77, 0xcc));
    p.drawLine(rect.topLeft(), rect.bottomLeft());
    p.drawLine(rect.topRight(), rect.bottomRight());
    p.drawText(rect.adjusted(4, 4, 0, 0), Qt::AlignLeft | Qt::AlignTop,
               qs(formatDuration(std::llabs(state.rangeSelection->duration()))));
  }
  p.restore();

  p.setPen(palette::kGrid);
  p.drawLine(lw - 1, 0, lw - 1, rowsBottom);
  if (state.legendHeight > 0) {
    // The categories in view: boxes and single-category blocks say which; a grey block of several
    // does not, so then the categories of the whole trace are listed.
    std::bitset<storage::kCategoryCount> present;
    bool anyMixed = false;
    for (const auto& item : list.items) {
      if (item.mixed)
        anyMixed = true;
      else
        present.set(static_cast<size_t>(item.category));
    }
    if (anyMixed) {
      for (const auto& c : trace.spans) {
        for (const auto cat : c.category) present.set(static_cast<size_t>(cat) % storage::kCategoryCount);
        if (present.all()) break;
      }
    }
    paintLegendStrip(p, QRect(0, rowsBottom, width, state.legendHeight), present, anyMixed);
  }
}

void paintLegendStrip(QPainter& p, const QRect& rect, std::bitset<storage::kCategoryCount> categories,
                      bool folded) {
  p.fillRect(rect, palette::kRulerBackground);
  p.setPen(palette::kGrid);
  p.drawLine(rect.topLeft(), rect.topRight());
  const QFontMetrics fm(p.font());
  const int sw = 12, gap = 14;
  int x = rect.left() + 10;
  const int cy = rect.center().y();
  auto entry = [&](const QString& text, auto&& drawSwatch) {
    const QRect sr(x, cy - sw / 2, sw, sw);
    drawSwatch(sr);
    x += sw + 5;
    p.setPen(palette::kLabelText);
    p.drawText(QRect(x, rect.top(), fm.horizontalAdvance(text) + 2, rect.height()),
               Qt::AlignLeft | Qt::AlignVCenter, text);
    x += fm.horizontalAdvance(text) + gap;
  };
  for (int i = 0; i < storage::kCategoryCount; ++i) {
    if (!categories.test(static_cast<size_t>(i))) continue;
    const auto c = static_cast<storage::Category>(i);
    entry(QString::fromUtf8(storage::categoryName(c)),
          [&](const QRect& r) { p.fillRect(r, categoryColor(c)); });
  }
  entry(QStringLiteral("forward / backward (rank rows)"), [&](const QRect& r) {
    p.fillRect(QRect(r.left(), r.top(), r.width() / 2, r.height()), palette::kForwardStretch);
    p.fillRect(QRect(r.left() + r.width() / 2, r.top(), r.width() - r.width() / 2, r.height()),
               palette::kBackwardStretch);
  });
  entry(QStringLiteral("backward span"), [&](const QRect& r) {
    p.fillRect(r, spanFill(storage::Category::ComputeAttention, Phase::Backward));
    p.fillRect(r, QBrush(palette::kBackwardHatch, Qt::FDiagPattern));
  });
  if (folded) {
    entry(QStringLiteral("many spans (zoom in)"), [&](const QRect& r) {
      p.fillRect(r, palette::kFolded);
      p.fillRect(QRect(r.left(), r.bottom() - 1, r.width(), 2), palette::kFolded.darker(140));
    });
  }
  entry(QStringLiteral("bubble"), [&](const QRect& r) {
    p.fillRect(r, palette::kBubble);
    p.fillRect(r, QBrush(palette::kBubbleHatch, Qt::BDiagPattern));
  });
}

}  // namespace moescope::ui
