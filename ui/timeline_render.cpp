#include "ui/timeline_render.h"

#include <QPainter>

#include "ui/draw_list.h"
#include "ui/span_access.h"
#include "ui/timeline_painter.h"

namespace moescope::ui {

TimeMapping renderMapping(const storage::Trace& trace, const RenderOptions& options) {
  TimeMapping m;
  m.width = std::max(options.size.width() - options.metrics.labelWidth, 1);
  return m.showing(options.range ? *options.range : timelineExtent(trace));
}

QImage renderTimeline(const storage::Trace& trace, const RenderOptions& options) {
  QImage image(options.size, QImage::Format_ARGB32_Premultiplied);
  const TimelineLayout layout = layoutTimeline(trace, {}, options.metrics);
  const int legend = options.legend ? kLegendStripHeight : 0;
  const TimeMapping mapping = renderMapping(trace, options);
  const DrawList list =
      buildDrawList(trace, layout, mapping, drawOptionsFor(layout, options.size, 0, legend));
  PaintState state;
  state.origin = timelineExtent(trace).start;
  state.legendHeight = legend;
  QPainter p(&image);
  QFont font = p.font();
  font.setPixelSize(11);
  p.setFont(font);
  paintTimeline(p, options.size, trace, layout, list, state);
  return image;
}

}  // namespace moescope::ui
