// One frame of the timeline prepared as the widget prepares it: the trace's summary, its layout and
// the draw list for a mapping.
#pragma once

#include <set>

#include "ui/draw_list.h"
#include "ui/timeline_layout.h"
#include "ui/timeline_summary.h"

namespace moescope::ui::test {

struct Frame {
  TimelineSummary summary;
  TimelineLayout layout;
  DrawList list;

  Frame(const storage::Trace& trace, const TimeMapping& m, const DrawOptions& o = {},
        const std::set<int32_t>& collapsed = {}, const SummaryOptions& so = {})
      : summary(summarizeTrace(trace, so)),
        layout(layoutTimeline(trace, summary, collapsed)),
        list(buildDrawList(trace, summary, layout, m, o)) {}
};

}  // namespace moescope::ui::test
