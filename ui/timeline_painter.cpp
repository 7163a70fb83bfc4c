#include "ui/timeline_painter.h"

#include <QFontMetrics>
#include <QImage>
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

namespace {

// Paints density items [first, last) of the list (one row and lane, by x) through one image: a frame of
// 10M spans has some 100k pixel columns, and one fillRect each would cost more than the rest of the
// frame. Pixels are written straight into the image's rows; the image is opaque, on the row's
// background, so that drawing it is a copy rather than a blend (half the paint time at 1M spans).
void paintDensity(QPainter& p, const DrawList& list, size_t first, size_t last, int left, const QRect& box,
                  const std::array<QRgb, storage::kCategoryCount>& colours, const QColor& background) {
  const DensityItem& head = list.density[first];
  const int x0 = head.x0;
  const int x1 =
      list.density[last - 1].x0 + static_cast<int>(list.density[last - 1].end - list.density[last - 1].begin);
  const int w = x1 - x0, h = box.height();
  if (w <= 0 || h <= 0) return;
  QImage image(w, h, QImage::Format_RGB32);
  image.fill(background);
  uchar* bits = image.bits();
  const qsizetype bpl = image.bytesPerLine();
  const QRgb grey = palette::kFolded.rgba(), bubble = palette::kBubble.rgba(),
             forward = palette::kForwardStretch.rgba(), backward = palette::kBackwardStretch.rgba(),
             optimizer = palette::kOptimizerStretch.rgba(), busyColour = palette::kUtilisation.rgba(),
             track = palette::kUtilisationTrack.rgba();
  const QRgb wait = bubble;
  auto height = [h](int share) { return static_cast<int>((share * h + 127) / 255); };
  // Fills rows [from, to) of column x, counted from the bottom of the image.
  auto fill = [&](int x, int from, int to, QRgb colour) {
    for (int y = std::max(from, 0); y < std::min(to, h); ++y)
      reinterpret_cast<QRgb*>(bits + static_cast<qsizetype>(h - 1 - y) * bpl)[x] = colour;
  };
  const bool bubbles = head.kind == DensityKind::Categories;
  for (size_t i = first; i < last; ++i) {
    const DensityItem& d = list.density[i];
    const auto columns = list.columnsOf(d);
    for (size_t k = 0; k < columns.size(); ++k) {
      const int x = d.x0 - x0 + static_cast<int>(k);
      const PixelShare& px = columns[k];
      if (d.kind == DensityKind::Utilisation) {
        const int busy = std::max(height(px.busy), px.busy > 0 ? 1 : 0);
        fill(x, busy, h, track);
        fill(x, 0, busy, busyColour);
        continue;
      }
      if (d.kind == DensityKind::Phases) {
        const int f = height(px.forward), b = height(px.forward + px.backward),
                  o = height(std::min(px.forward + px.backward + px.optimizer, 255));
        fill(x, 0, f, forward);
        fill(x, f, b, backward);
        fill(x, b, o, optimizer);
        continue;
      }
      // Categories in their order from the bottom, each band's top rounded from the running sum so that
      // rounding leaves no gaps; wait is bubble time, drawn as one; then time of no known category.
      int sum = 0, y = 0;
      for (size_t c = 0; c < storage::kCategoryCount; ++c) {
        if (px.share[c] == 0) continue;
        sum += px.share[c];
        const int top = std::max(height(std::min(sum, 255)), y + (y == 0 ? 1 : 0));
        fill(x, y, top, c == static_cast<size_t>(storage::Category::Wait) ? wait : colours[c]);
        y = top;
      }
      const int busy = std::max(height(px.busy), y);
      fill(x, y, busy, grey);
      if (bubbles && px.inStep) fill(x, busy, h, bubble);
    }
  }
  p.drawImage(QPoint(left + x0, box.top()), image);
}

}  // namespace

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
      const QString label = QString::fromUtf8(row.collapsed ? "▸ " : "▾ ") +
                            qs(rankLabel(rank ? *rank : fallback) + rankClockLabel(trace, row.rank));
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
      const QString name = qs(trackLabel(trace, row));
      p.setPen(palette::kLabelText);
      p.drawText(QRect(22, y, lw - 28, std::min(row.height, layout.metrics.trackHeight)),
                 Qt::AlignLeft | Qt::AlignVCenter, fm.elidedText(name, Qt::ElideMiddle, lw - 28));
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
  auto laneRect = [&](const TimelineRow& row, int lane, double x0, double x1) {
    const int top = layout.laneTop(row, lane) - state.scrollY,
              bottom = layout.laneBottom(row, lane) - state.scrollY;
    const int left = static_cast<int>(std::floor(lw + x0));
    const int right = std::max(static_cast<int>(std::floor(lw + x1)), left + 1);
    return QRect(left, top, right - left, bottom - top);
  };
  auto boxRect = [&](const TimelineRow& row, double x0, double x1) {
    const int top = layout.boxTop(row) - state.scrollY, bottom = layout.boxBottom(row) - state.scrollY;
    const int left = static_cast<int>(std::floor(lw + x0));
    const int right = std::max(static_cast<int>(std::floor(lw + x1)), left + 1);
    return QRect(left, top, right - left, bottom - top);
  };
  // Fills by category: [0] forward or none, [1] backward.
  std::array<std::array<QColor, 2>, storage::kCategoryCount> fills;
  std::array<QRgb, storage::kCategoryCount> plain{};
  for (int i = 0; i < storage::kCategoryCount; ++i) {
    const auto cat = static_cast<storage::Category>(i);
    fills[static_cast<size_t>(i)] = {spanFill(cat, Phase::Forward), spanFill(cat, Phase::Backward)};
    plain[static_cast<size_t>(i)] = categoryColor(cat).rgba();
  }

  // Rank headers: the schedule's stretches, forward light and backward dark, with their micro-batch.
  for (const auto& ph : list.phases) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(ph.row)];
    const int top = row.y - state.scrollY + 3, h = row.height - 6;
    const int left = static_cast<int>(std::floor(lw + ph.x0));
    const int right = std::max(static_cast<int>(std::floor(lw + ph.x1)), left + 1);
    const QRect rect(left, top, right - left > 4 ? right - left - 1 : right - left, h);
    const QColor& fill = shadedAsBackward(ph.phase)     ? palette::kBackwardStretch
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
    const QRect rect = laneRect(row, 0, b.x0, b.x1);
    p.fillRect(rect, palette::kBubble);
    p.fillRect(rect, bubbleHatch);
  }

  // Pixel columns: folded spans, rank headers zoomed out, GPU utilisation; one image per run of items of
  // a row and lane.
  for (size_t i = 0; i < list.density.size();) {
    const DensityItem& d = list.density[i];
    size_t j = i + 1;
    while (j < list.density.size() && list.density[j].row == d.row && list.density[j].lane == d.lane &&
           list.density[j].kind == d.kind && list.density[j].x0 >= list.density[j - 1].x0)
      ++j;
    const TimelineRow& row = layout.rows[static_cast<size_t>(d.row)];
    const QRect box = d.kind == DensityKind::Categories
                          ? laneRect(row, d.lane, 0, 1)
                          : QRect(lw, row.y - state.scrollY + 3, 1, row.height - 6);
    const QColor& background = row.kind == TimelineRow::Kind::Group ? palette::kGroupHeader
                               : d.row % 2 == 0                     ? palette::kRowAlternate
                                                                    : palette::kBackground;
    paintDensity(p, list, i, j, lw, box, plain, background);
    i = j;
  }

  // GPU work no span launched (start-up copies and the like).
  for (const auto& o : list.outside) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(o.row)];
    const QRect rect = boxRect(row, o.x0, o.x1);
    p.fillRect(rect, palette::kOutside);
    if (rect.width() >= 4) {
      p.setPen(palette::kOutsideEdge);
      p.setBrush(Qt::NoBrush);
      p.drawRect(rect.adjusted(0, 0, -1, -1));
    }
  }

  for (const auto& item : list.items) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(item.row)];
    const double w = item.x1 - item.x0;
    // Boxes wide enough keep a one-pixel gap to their neighbour, so that touching spans read apart.
    const QRect rect = laneRect(row, item.lane, item.x0, w >= 5 ? item.x1 - 1 : item.x1);
    const auto& shades = fills[static_cast<size_t>(item.category) % fills.size()];
    const QColor& fill = shadedAsBackward(item.phase) ? shades[1] : shades[0];
    p.fillRect(rect, fill);
    if (shadedAsBackward(item.phase) && item.category != storage::Category::Wait && w >= 6) {
      p.fillRect(rect, backwardHatch);
    }
    // Waiting for a peer is bubble time too: hatched like the bubbles around it.
    if (item.category == storage::Category::Wait && w >= 6) p.fillRect(rect, bubbleHatch);
    if (state.search && static_cast<size_t>(item.track) < trace.spans.size() &&
        state.search->matches(trace.spans[static_cast<size_t>(item.track)].name[item.first])) {
      p.setPen(QPen(palette::kSearchMatch.darker(130), 2));
      p.setBrush(Qt::NoBrush);
      p.drawRect(rect.adjusted(1, 1, -1, -1));
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
        p.setPen(textOn(fill));
        p.drawStaticText(
            QPointF(tr.left() + (tr.width() - textWidth) / 2, tr.top() + (tr.height() - fm.height()) / 2.0),
            *text);
      }
    }
  }

  // Search matches in view: a yellow tick along the top of their row.
  for (const auto& mark : state.searchMarks) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(mark.row)];
    const int top = row.y - state.scrollY;
    const int left = static_cast<int>(std::floor(lw + mark.x0));
    const int right = std::max(static_cast<int>(std::floor(lw + mark.x1)), left + 1);
    p.fillRect(QRect(left, top, right - left, layout.metrics.boxMargin), palette::kSearchMatch.darker(115));
  }

  // The area selection: its rows shaded over its time range, edges across every row.
  if (state.area && state.area->range.duration() > 0) {
    const double x0 = m.toX(state.area->range.start), x1 = m.toX(state.area->range.end);
    const int left = static_cast<int>(std::floor(lw + std::max(x0, -2.0)));
    const int right = static_cast<int>(std::ceil(lw + std::min(x1, m.width + 2)));
    for (int r = r0; r < r1; ++r) {
      const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
      const bool selected =
          row.kind == TimelineRow::Kind::Track
              ? state.area->contains(row.track)
              : row.kind == TimelineRow::Kind::Group && row.collapsed &&
                    std::any_of(trace.tracks.begin(), trace.tracks.end(), [&](const auto& t) {
                      return t.rank == row.rank && state.area->contains(t.id);
                    });
      if (selected)
        p.fillRect(QRect(left, row.y - state.scrollY, right - left, row.height), palette::kAreaSelect);
    }
    p.setPen(QPen(palette::kAreaEdge, 1, Qt::DashLine));
    if (x0 >= -1) p.drawLine(QPointF(lw + x0, rh), QPointF(lw + x0, rowsBottom));
    if (x1 <= m.width + 1) p.drawLine(QPointF(lw + x1, rh), QPointF(lw + x1, rowsBottom));
    // Its length on a tag in the ruler's step band, clear of the rows' labels.
    const QString length = qs(formatDuration(state.area->range.duration()));
    const QRect tag(std::max(left, lw) + 2, rh - 17, QFontMetrics(p.font()).horizontalAdvance(length) + 8,
                    15);
    p.setClipRect(QRect(lw, 0, width - lw, rowsBottom));
    p.fillRect(tag, palette::kAreaEdge);
    p.setPen(Qt::white);
    p.drawText(tag, Qt::AlignCenter, length);
    p.setClipRect(QRect(lw, rh, width - lw, rowsBottom - rh));
  }

  // Flows: arrows from a launching span to its GPU work, and between pipeline stages; each on a white
  // halo, so that it reads on the boxes it crosses.
  if (!state.flows.empty()) {
    p.setRenderHint(QPainter::Antialiasing, true);
    for (int pass = 0; pass < 2; ++pass) {
      for (const FlowLine& f : state.flows) {
        const QPointF a(lw + f.x0, f.y0 - state.scrollY), b(lw + f.x1, f.y1 - state.scrollY);
        const QColor colour = pass == 0                    ? QColor(255, 255, 255, 220)
                              : f.kind == FlowKind::Launch ? palette::kLaunchFlow
                                                           : palette::kPipelineFlow;
        p.setPen(QPen(colour, pass == 0 ? 4.5 : 2.0, Qt::SolidLine, Qt::RoundCap));
        p.drawLine(a, b);
        const QLineF line(b, a);
        if (line.length() < 1) continue;
        const QLineF unit = line.unitVector();
        const QPointF d(unit.dx(), unit.dy()), n(-unit.dy(), unit.dx());
        const double size = pass == 0 ? 11 : 9, half = pass == 0 ? 6 : 4.5;
        const QPointF head[3] = {b, b + size * d + half * n, b + size * d - half * n};
        p.setBrush(colour);
        p.setPen(Qt::NoPen);
        p.drawPolygon(head, 3);
        p.drawEllipse(a, pass == 0 ? 4.0 : 2.8, pass == 0 ? 4.0 : 2.8);
      }
    }
    p.setBrush(Qt::NoBrush);
    p.setRenderHint(QPainter::Antialiasing, false);
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
    const TimelineRow& row = layout.rows[static_cast<size_t>(rowIndex)];
    const TrackSummary* ts = state.summary ? state.summary->track(ref.track) : nullptr;
    const int lane = ts ? std::min(ts->laneOfSpan(ref.index), row.lanes - 1) : 0;
    const QRect rect = laneRect(row, lane, x0, x1).adjusted(-1, -1, 0, 0);
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
    LegendExtras extras = legendExtras(list);
    extras.flows = !state.flows.empty();
    paintLegendStrip(p, QRect(0, rowsBottom, width, state.legendHeight), list.categoriesShown(), extras);
  }
}

LegendExtras legendExtras(const DrawList& list) {
  LegendExtras extras;
  extras.outside = !list.outside.empty();
  for (const auto& d : list.density) {
    if (d.kind == DensityKind::Utilisation) extras.utilisation = true;
    if (d.kind != DensityKind::Categories || extras.folded) continue;
    for (const PixelShare& px : list.columnsOf(d)) {
      int known = 0;
      for (uint8_t share : px.share) known += share;
      if (px.busy > known + 2) {
        extras.folded = true;
        break;
      }
    }
  }
  return extras;
}

void paintLegendStrip(QPainter& p, const QRect& rect, std::bitset<storage::kCategoryCount> categories,
                      const LegendExtras& extras) {
  p.fillRect(rect, palette::kRulerBackground);
  p.setPen(palette::kGrid);
  p.drawLine(rect.topLeft(), rect.topRight());
  const QFontMetrics fm(p.font());
  const int sw = 12, gap = 14, lineHeight = 20;
  int x = rect.left() + 10;
  // Entries wrap onto as many lines as the strip holds.
  const int lines = std::max(1, (rect.height() - 4) / lineHeight);
  int line = 0;
  auto entry = [&](const QString& text, auto&& drawSwatch) {
    const int w = sw + 5 + fm.horizontalAdvance(text) + gap;
    if (x + w > rect.right() && x > rect.left() + 10 && line + 1 < lines) {
      ++line;
      x = rect.left() + 10;
    }
    const int top =
        rect.top() + 2 + line * lineHeight + (lines == 1 ? (rect.height() - 4 - lineHeight) / 2 : 0);
    const int cy = top + lineHeight / 2;
    const QRect sr(x, cy - sw / 2, sw, sw);
    drawSwatch(sr);
    x += sw + 5;
    p.setPen(palette::kLabelText);
    p.drawText(QRect(x, top, fm.horizontalAdvance(text) + 2, lineHeight), Qt::AlignLeft | Qt::AlignVCenter,
               text);
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
  if (extras.folded) {
    entry(QStringLiteral("other categories (folded)"),
          [&](const QRect& r) { p.fillRect(r, palette::kFolded); });
  }
  if (extras.utilisation) {
    entry(QStringLiteral("GPU busy"), [&](const QRect& r) {
      p.fillRect(QRect(r.left(), r.top() + r.height() / 3, r.width(), r.height() - r.height() / 3),
                 palette::kUtilisation);
    });
  }
  if (extras.outside) {
    entry(QStringLiteral("GPU work outside spans"), [&](const QRect& r) {
      p.fillRect(r, palette::kOutside);
      p.setPen(palette::kOutsideEdge);
      p.drawRect(r.adjusted(0, 0, -1, -1));
    });
  }
  if (extras.flows) {
    entry(QStringLiteral("launch / pipeline flow"), [&](const QRect& r) {
      p.fillRect(QRect(r.left(), r.center().y() - 2, r.width() / 2, 3), palette::kLaunchFlow);
      p.fillRect(QRect(r.left() + r.width() / 2, r.center().y() - 2, r.width() - r.width() / 2, 3),
                 palette::kPipelineFlow);
    });
  }
  entry(QStringLiteral("bubble"), [&](const QRect& r) {
    p.fillRect(r, palette::kBubble);
    p.fillRect(r, QBrush(palette::kBubbleHatch, Qt::BDiagPattern));
  });
}

}  // namespace moescope::ui
