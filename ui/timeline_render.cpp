#include "ui/timeline_render.h"

#include <QPainter>
#include <algorithm>
#include <vector>

#include "ui/draw_list.h"
#include "ui/span_access.h"
#include "ui/timeline_painter.h"

namespace moescope::ui {

TimeMapping renderMapping(const storage::Trace& trace, const RenderOptions& options) {
  TimeMapping m;
  m.width = std::max(options.size.width() - options.metrics.labelWidth, 1);
  return m.showing(options.range ? *options.range : timelineExtent(trace));
}

QSize fittedSize(const storage::Trace& trace, int width, const LayoutMetrics& metrics, int maxHeight) {
  const TimelineLayout layout = layoutTimeline(trace, {}, metrics);
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

DrawList pictureDrawList(const storage::Trace& trace, const RenderOptions& options) {
  const TimelineLayout layout = layoutTimeline(trace, options.collapsedRanks, options.metrics);
  const int legend = options.legend ? kLegendStripHeight : 0;
  DrawOptions drawOptions = drawOptionsFor(layout, options.size, 0, legend);
  drawOptions.hidden = options.hidden;
  return buildDrawList(trace, layout, renderMapping(trace, options), drawOptions);
}

void paintTimelinePicture(QPainter& p, const storage::Trace& trace, const RenderOptions& options) {
  const TimelineLayout layout = layoutTimeline(trace, options.collapsedRanks, options.metrics);
  const DrawList list = pictureDrawList(trace, options);
  PaintState state;
  state.origin = options.origin ? *options.origin : timelineExtent(trace).start;
  state.legendHeight = options.legend ? kLegendStripHeight : 0;
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
