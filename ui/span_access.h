// Small reads of a track's span columns that the timeline needs on every frame: the first span that
// may intersect a time, the latest end of a track, the extent of a trace. Kept here, over the plain
// columns of storage/trace.h, so that the UI's per-frame work is in one place and allocation-free.
#pragma once

#include <cstddef>
#include <cstdint>

#include "storage/trace.h"
#include "ui/time_mapping.h"

namespace moescope::ui {

// The first index whose span may end after t (spans before it all end at or before t), using the
// track's longest duration as the look-back.
size_t firstSpanEndingAfter(const storage::SpanColumns& c, int64_t t);
// The first index whose span starts at or after t, searching [from, to).
size_t firstSpanStartingAt(const storage::SpanColumns& c, int64_t t, size_t from, size_t to);
// The same, for a t expected close after from: an exponential search from `from`, then a binary one,
// so that its cost grows with the log of the distance rather than of the track's length.
size_t gallopToStart(const storage::SpanColumns& c, int64_t t, size_t from, size_t to);
// The latest end on the track (0 when it is empty).
int64_t latestEnd(const storage::SpanColumns& c);
// From the first start to the last end over all tracks; {0, 0} for a trace without spans.
TimeRange spanExtent(const storage::Trace& trace);
// The extent of the trace as the timeline shows it, and the origin of its ruler: from the first span
// to the last; the run's start and end when there are no spans yet.
TimeRange timelineExtent(const storage::Trace& trace);

}  // namespace moescope::ui
