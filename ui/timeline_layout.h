// The rows of the timeline, top to bottom: a header row per rank (stage, tp, dp, device), then, unless
// the rank is collapsed, a utilisation row per GPU of the rank (GPU runs), a row per track of the rank,
// as tall as its nesting lanes need, and, for a rank with counter tracks (memory, tokens per expert,
// dropped assignments), a "counters" row, collapsed unless the rank is in expandedCounters, and when
// expanded a row per counter track. Ranks go in pipeline order (dp, stage, tp), so
// the fill and the drain of a pipeline read as a staircase. Plain data; the widget, the picture
// renderer, the draw list and hit testing share it.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "storage/trace.h"
#include "ui/timeline_summary.h"

namespace moescope::ui {

struct LayoutMetrics {
  int rulerHeight = 40;  // the time ruler at the top: tick labels, then the steps
  int groupHeight = 22;  // a rank's header row: its label and its schedule's stretches
  int trackHeight = 24;  // a track's row of one lane
  int laneHeight = 18;   // each lane of a track with nested spans (the first included)
  int boxMargin = 3;     // between a row's edge and its span boxes
  int labelWidth = 280;  // the label column left of the time area (the user may drag it)
  bool operator==(const LayoutMetrics&) const = default;
};

struct TimelineRow {
  enum class Kind : uint8_t { Group, Track, Utilisation, Counters, Counter };
  Kind kind = Kind::Track;
  int32_t rank = 0;                    // RankInfo::rank
  int32_t track = -1;                  // track id, -1 for a group header, a utilisation or counters row
  int y = 0, height = 0;               // in timeline coordinates (0 = top of the ruler)
  bool collapsed = false;              // group headers and counters rows only
  int lanes = 1;                       // tracks: nesting lanes
  int32_t device = -1;                 // utilisation rows: the GPU
  StreamRole role = StreamRole::None;  // GPU stream tracks: what ran on them
  bool operator==(const TimelineRow&) const = default;
};

struct TimelineLayout {
  LayoutMetrics metrics;
  std::vector<TimelineRow> rows;
  int height = 0;  // the ruler and every row

  // The row at timeline coordinate y, or -1.
  int rowAt(int y) const;
  // The row showing track, or -1 (its rank is collapsed, or it has no row).
  int rowOfTrack(int32_t track) const;
  // Rows [first, last) that intersect [y0, y1).
  std::pair<int, int> rowsIn(int y0, int y1) const;
  // Top and bottom of a track row's span boxes (every lane).
  int boxTop(const TimelineRow& r) const { return r.y + metrics.boxMargin; }
  int boxBottom(const TimelineRow& r) const { return r.y + r.height - metrics.boxMargin; }
  // Top and bottom of one lane's boxes: a one-lane row keeps the whole box height, lanes of a nested
  // row are laneHeight apart with a gap between them.
  int laneTop(const TimelineRow& r, int lane) const { return boxTop(r) + lane * metrics.laneHeight; }
  int laneBottom(const TimelineRow& r, int lane) const {
    return r.lanes <= 1 ? boxBottom(r) : laneTop(r, lane) + metrics.laneHeight - 2;
  }
  // The lane under timeline coordinate y of a track row, or -1 outside its boxes.
  int laneAt(const TimelineRow& r, int y) const;
};

// Tracks of kind Counter hold samples, not spans: they get Counter rows, under their rank's Counters
// row. The summary gives each track's lanes and role, and the GPUs of the utilisation rows.
TimelineLayout layoutTimeline(const storage::Trace& trace, const TimelineSummary& summary,
                              const std::set<int32_t>& collapsedRanks, const LayoutMetrics& metrics = {},
                              const std::set<int32_t>& expandedCounters = {});

// A track row's label: the track's name, and for a GPU stream its role ("GPU 0 stream 7 · compute").
std::string trackLabel(const storage::Trace& trace, const TimelineRow& row);

// "rank 3 · stage 1 · tp 1 · dp 0 · GPU 3" (or "· cpu" without a device).
std::string rankLabel(const storage::RankInfo& rank);
// " · clock ±1.2 µs" for a rank of a multi-process run whose clock was aligned to rank 0's with that
// uncertainty (storage/shard_meta.h), else "".
std::string rankClockLabel(const storage::Trace& trace, int32_t rank);

}  // namespace moescope::ui
