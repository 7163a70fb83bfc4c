// An area selection, as Perfetto makes one: an exact time range over chosen rows. The aggregation
// panel sums exactly what it covers; the timeline shades it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ui/time_mapping.h"
#include "ui/timeline_layout.h"

namespace moescope::ui {

struct AreaSelection {
  TimeRange range;
  std::vector<int32_t> tracks;  // sorted, unique
  bool contains(int32_t track) const { return std::binary_search(tracks.begin(), tracks.end(), track); }
  bool empty() const { return tracks.empty() || range.duration() <= 0; }
  bool operator==(const AreaSelection&) const = default;
};

// The tracks of the rows [rowA, rowB] (either order): a track row its track, a rank header every track
// of the rank (so that a collapsed rank can be selected whole).
std::vector<int32_t> tracksOfRows(const storage::Trace& trace, const TimelineLayout& layout, int rowA,
                                  int rowB);

// Every host and GPU-stream track of the trace, sorted.
std::vector<int32_t> allTracks(const storage::Trace& trace);

}  // namespace moescope::ui
