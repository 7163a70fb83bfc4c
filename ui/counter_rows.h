// A counter track's row in the timeline: its samples (memory, tokens per expert, dropped assignments,
// one per step and rank) as a step line over the visible time, scaled from 0 to the track's largest
// value (the same scale at every zoom), that value written at the row's right end.
#pragma once

#include <QPainter>
#include <QRect>
#include <utility>

#include "storage/trace.h"
#include "ui/time_mapping.h"

namespace moescope::ui {

// The samples of a track: indices [first, last) into trace.counters (sorted by track, then time).
std::pair<size_t, size_t> counterSamples(const storage::Trace& trace, int32_t track);
// Paints the track's line into area (x = 0 of the mapping at area.left()).
void paintCounterRow(QPainter& p, const storage::Trace& trace, int32_t track, QRect area,
                     const TimeMapping& m);

}  // namespace moescope::ui
