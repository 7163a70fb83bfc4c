#include "ui/timeline_render.h"

#include <QPainter>
#include <algorithm>
#include <vector>

#include "ui/draw_list.h"
#include "ui/flows.h"
#include "ui/span_access.h"
#include "ui/timeline_painter.h"

namespace moescope::ui {

TimeMapping renderMapping(const storage::Trace& trace, const RenderOptions& options) {
  TimeMapping m;
  m.width = std::max(options.size.width() - options.metrics.labelWidth, 1);
  if (options.range) return m.showing(*options.range);
  return m.showing(options.summary ? options.summary->extent : summarizeTrace(trace).extent);
}

QSize fittedSize(const storage::Trace& trace, const TimelineSummary& summary, int width,
                 const LayoutMetrics& metrics, int maxHeight) {
  const TimelineLayout layout = layoutTimeline(trace, summary, {}, metrics);
  return {width, std::min(layout.height + kLegendStripHeight + 4, maxHeight)};
}

std::optional<TimeRange> middleSteps(const storage::Trace& trace, int count) {
  std::vector<const storage::StepMetric*> steps;
  for (const auto& s : trace.steps) {
    if (s.end_ns > s.start_ns) steps.push_back(&s);
  }
  if (steps.empty() || count < 1) return std::nullopt;
  const size_t n = std::min(steps.size(), static_cast<size_t>(count));
  const size_t first = (steps.size() - n) / 2;
  TimeRange r{steps[first]->start_ns, steps[first + n - 1]->end_ns};
  const int64_t margin = r.duration() / 100;
  return TimeRange{r.start - margin, r.end + margin};
}

std::optional<TimeRange> steadySteps(const storage::Trace& trace) {
  std::vector<const storage::StepMetric*> steps;
  for (const auto& s : trace.steps) {
    if (s.end_ns > s.start_ns) steps.push_back(&s);
  }
  if (steps.size() < 2) return std::nullopt;
  int64_t end = steps[1]->end_ns;
  for (size_t i = 1; i < steps.size(); ++i) end = std::max(end, steps[i]->end_ns);
  const TimeRange r{steps[1]->start_ns, end};
  const int64_t margin = r.duration() / 100;
  return TimeRange{r.start - margin, r.end + margin};
}

namespace {

// The picture's summary: the options' one, or one made here (kept in `own`).
const TimelineSummary& summaryFor(const storage::Trace& trace, const RenderOptions& options,
                                  TimelineSummary& own) {
  if (options.summary) return *options.summary;
  own = summarizeTrace(trace);
  return own;
}

DrawList drawListFor(const storage::Trace& trace, const TimelineSummary& summary,
                     const TimelineLayout& layout, const RenderOptions& options) {
  const int legend = options.legend ? kLegendStripHeight : 0;
  DrawOptions drawOptions = drawOptionsFor(layout, options.size, 0, legend);
  drawOptions.hidden = options.hidden;
  RenderOptions o = options;
  o.summary = &summary;
  return buildDrawList(trace, summary, layout, renderMapping(trace, o), drawOptions);
}

}  // namespace

DrawList pictureDrawList(const storage::Trace& trace, const RenderOptions& options) {
  TimelineSummary own;
  const TimelineSummary& summary = summaryFor(trace, options, own);
  const TimelineLayout layout = layoutTimeline(trace, summary, options.collapsedRanks, options.metrics);
  return drawListFor(trace, summary, layout, options);
}

void paintTimelinePicture(QPainter& p, const storage::Trace& trace, const RenderOptions& options) {
  TimelineSummary own;
  const TimelineSummary& summary = summaryFor(trace, options, own);
  const TimelineLayout layout = layoutTimeline(trace, summary, options.collapsedRanks, options.metrics);
  const DrawList list = drawListFor(trace, summary, layout, options);
  PaintState state;
  state.origin = options.origin ? *options.origin : timelineExtent(trace).start;
  state.legendHeight = options.legend ? kLegendStripHeight : 0;
  state.summary = &summary;
  state.selected = options.selected;
  state.area = options.area;
  state.search = options.search;
  if (options.search) state.searchMarks = options.search->marks(trace, layout, list.mapping);
  if (options.selected)
    state.flows = flowLines(trace, summary, layout, list.mapping, flowsOf(trace, *options.selected));
  QFont font = p.font();
  font.setPixelSize(11);
  p.setFont(font);
  paintTimeline(p, options.size, trace, layout, list, state);
}

QImage renderTimeline(const storage::Trace& trace, const RenderOptions& options) {
  QImage image(options.size, QImage::Format_ARGB32_Premultiplied);
  QPainter p(&image);
  paintTimelinePicture(p, trace, options);
  return image;
}

}  // namespace moescope::ui
