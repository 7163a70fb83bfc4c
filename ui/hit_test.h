// Which span lies under a pixel of the timeline: the row and lane from the layout, the box from the
// frame's draw list, and where spans fold into pixel columns the span at that time from the lane.
#pragma once

#include <cstdint>
#include <optional>

#include "storage/trace.h"
#include "ui/draw_list.h"
#include "ui/timeline_layout.h"

namespace moescope::ui {

// A span of the trace: its track and its index in the track's columns.
struct SpanRef {
  int32_t track = -1;
  uint32_t index = 0;
  bool valid() const { return track >= 0; }
  bool operator==(const SpanRef&) const = default;
};

struct Hit {
  SpanRef span;
  uint32_t folded = 1;  // how many spans of the lane lie in the pixel under the pointer (1: a box)
  bool operator==(const Hit&) const = default;
};

// x in time-area pixels, y in timeline coordinates. tolerancePx widens thin boxes for the mouse.
std::optional<Hit> hitTest(const storage::Trace& trace, const TimelineSummary& summary,
                           const TimelineLayout& layout, const DrawList& list, double x, int y,
                           double tolerancePx = 1.0);

// The GPU record without a launching span under the pointer (an index into Trace::gpu), if any.
std::optional<uint32_t> outsideHit(const storage::Trace& trace, const TimelineSummary& summary,
                                   const TimelineLayout& layout, const DrawList& list, double x, int y);

// The group header under y, as its rank, for collapsing.
std::optional<int32_t> groupAt(const TimelineLayout& layout, int y);
// The rank whose counters row is at timeline coordinate y, if one is.
std::optional<int32_t> countersAt(const TimelineLayout& layout, int y);

}  // namespace moescope::ui
