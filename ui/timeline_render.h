// The timeline as a picture, without a window: what `moescope --render` writes and what tests read.
#pragma once

#include <QImage>
#include <QPainter>
#include <QSize>
#include <bitset>
#include <cstdint>
#include <optional>
#include <set>

#include "storage/trace.h"
#include "ui/area_selection.h"
#include "ui/draw_list.h"
#include "ui/span_search.h"
#include "ui/time_mapping.h"
#include "ui/timeline_layout.h"

namespace moescope::ui {

struct RenderOptions {
  QSize size{1600, 900};
  std::optional<TimeRange> range;  // the time shown; the whole trace when not set
  bool legend = true;              // a legend strip along the bottom
  LayoutMetrics metrics;
  std::optional<int64_t> origin;  // time 0 of the ruler; the run's first span when not set
  std::set<int32_t> collapsedRanks;
  std::bitset<storage::kCategoryCount> hidden;  // categories left out
  // Prepared once for the trace (timeline_summary.h); made for the picture when null.
  const TimelineSummary* summary = nullptr;
  std::optional<SpanRef> selected;     // outlined, with its flows
  std::optional<AreaSelection> area;   // shaded
  const SpanSearch* search = nullptr;  // matches marked
};

inline constexpr int kLegendStripHeight = 44;  // two lines of entries

// Needs a QGuiApplication (fonts); works on the offscreen platform.
QImage renderTimeline(const storage::Trace& trace, const RenderOptions& options);
// The same picture on any paint device (an SVG generator, a band of a larger picture), from (0, 0)
// over options.size; sets the painter's font.
void paintTimelinePicture(QPainter& p, const storage::Trace& trace, const RenderOptions& options);
// The draw list the picture paints (for tests: what one picture holds).
DrawList pictureDrawList(const storage::Trace& trace, const RenderOptions& options);

// The mapping a picture of this size shows for the trace (the same one renderTimeline uses).
TimeMapping renderMapping(const storage::Trace& trace, const RenderOptions& options);

// A picture width wide and as tall as every row and the legend need (at most maxHeight).
QSize fittedSize(const storage::Trace& trace, const TimelineSummary& summary, int width,
                 const LayoutMetrics& metrics = {}, int maxHeight = 4000);

// count steps from the middle of the run (the steady state, away from warm-up), with a margin of
// 1% on each side; nothing when the trace has no step metrics.
std::optional<TimeRange> middleSteps(const storage::Trace& trace, int count = 2);

// Every step after the first (the warm-up: allocations, autotuning, first copies), with a margin of 1%
// on each side; nothing with fewer than two steps.
std::optional<TimeRange> steadySteps(const storage::Trace& trace);

}  // namespace moescope::ui
