// Paints a prepared frame of the timeline with QPainter: the ruler, the rank and track labels, the
// bubbles, the span boxes and the pixel columns of folded spans, rank headers and GPU utilisation of
// the draw list, then the search marks, the area selection, the flows and the selection. It reads only
// the draw list (and the state) for what to draw; the trace is used for names and labels of the boxes
// it draws. The widget and the picture renderer (--render) both paint through it.
#pragma once

#include <QPainter>
#include <QSize>
#include <optional>

#include "storage/trace.h"
#include "ui/area_selection.h"
#include "ui/draw_list.h"
#include "ui/flows.h"
#include "ui/hit_test.h"
#include "ui/span_search.h"
#include "ui/timeline_layout.h"

namespace moescope::ui {

class LabelCache;

struct PaintState {
  int scrollY = 0;     // timeline y at the top of the rows area, less the ruler
  int64_t origin = 0;  // time 0 of the ruler (the run's first span)
  std::optional<SpanRef> selected;
  std::optional<SpanRef> hovered;
  std::optional<TimeRange> rangeSelection;   // a zoom drag in progress
  std::optional<AreaSelection> area;         // the area selection (or one being dragged)
  std::vector<FlowLine> flows;               // the selected span's flows, for this view
  std::vector<SearchMark> searchMarks;       // matches of the search in view
  const SpanSearch* search = nullptr;        // boxes whose name matches are outlined
  int legendHeight = 0;                      // a legend strip at the bottom (pictures), 0 for none
  LabelCache* labels = nullptr;              // kept across frames by the widget; a fresh one if null
  const TimelineSummary* summary = nullptr;  // the lanes of the selected span; lane 0 if null
};

// The draw list must have been built with this size's time area and rows. Everything is painted in
// device pixels from (0, 0).
void paintTimeline(QPainter& p, QSize size, const storage::Trace& trace, const TimelineLayout& layout,
                   const DrawList& list, const PaintState& state);

// What the legend strip shows beside the categories.
struct LegendExtras {
  bool folded = false;       // grey: folded time of other categories
  bool utilisation = false;  // GPU utilisation rows
  bool outside = false;      // GPU work outside any span
  bool flows = false;        // launch and pipeline arrows
};
// The extras a draw list shows (grey folded time, utilisation rows, GPU work outside spans).
LegendExtras legendExtras(const DrawList& list);
// The legend strip of the pictures: a swatch per category in categories, then the forward and
// backward stretches, backward spans, and what extras says, and bubbles.
void paintLegendStrip(QPainter& p, const QRect& rect, std::bitset<storage::kCategoryCount> categories,
                      const LegendExtras& extras = {});

// The draw-list options matching a widget or picture of this size scrolled to scrollY.
DrawOptions drawOptionsFor(const TimelineLayout& layout, QSize size, int scrollY, int legendHeight = 0);

// The label of a box: "F3" / "B3" for a micro-batch of the forward / backward pass, with the name
// when it fits; empty when nothing fits in width pixels.
QString boxLabel(const storage::Trace& trace, const DrawItem& item, const QFontMetrics& fm, double width);

}  // namespace moescope::ui
