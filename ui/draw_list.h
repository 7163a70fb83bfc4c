// What one frame of the timeline draws, prepared before painting (Tracy's folded zones, hotspot's
// TimeLineData): for each visible track row, a binary search finds the spans in the visible range;
// spans at least minSpanPx wide become boxes, and runs of narrower spans (with gaps narrower than
// minSpanPx between them) fold into one block that counts them, found with further binary searches,
// so a frame costs about (rows x pixels / minSpanPx) x log(spans) whatever the zoom. Bubbles (a
// track's time inside a step that no span other than `wait` covers) come out of the same walk.
// Painting walks only this list.
#pragma once

#include <bitset>
#include <climits>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "storage/trace.h"
#include "ui/time_mapping.h"
#include "ui/timeline_layout.h"

namespace moescope::ui {

enum class DrawKind : uint8_t { Span, Folded };

struct DrawItem {
  float x0 = 0, x1 = 0;  // time-area pixels, clipped to a little outside [0, width]
  int32_t row = 0;       // index into TimelineLayout::rows
  int32_t track = 0;
  uint32_t first = 0;  // index of the (first) span in the track's columns
  uint32_t count = 1;  // spans it stands for: 1 for a box, more for a folded block
  storage::Category category = storage::Category::ComputeAttention;  // a folded block: its majority
  storage::Phase phase = storage::Phase::None;
  DrawKind kind = DrawKind::Span;
  bool mixed = false;  // a folded block whose spans are of several categories
  int16_t microbatch = -1;
  bool operator==(const DrawItem&) const = default;
};

struct BubbleItem {
  float x0 = 0, x1 = 0;
  int32_t row = 0;
  bool operator==(const BubbleItem&) const = default;
};

// A stretch of one micro-batch's forward or backward pass (or the optimizer) on a rank, drawn in the
// rank's header row: the pipeline schedule at a glance, which stays when the rank is collapsed.
// Made from the rank's first track: from the first to the last span of a run of spans of the same
// step, phase, micro-batch and chunk; waits inside a run leave it whole, waits around it stay outside.
struct PhaseItem {
  float x0 = 0, x1 = 0;
  int32_t row = 0;  // the rank's header row
  storage::Phase phase = storage::Phase::Forward;
  int16_t microbatch = -1;
  int8_t chunk = -1;  // an interleaved schedule's model chunk on the stage
  bool operator==(const PhaseItem&) const = default;
};

// A stretch's label: "F3" (forward of micro-batch 3), "B3", "W3" (ZB-H1's weight gradients), with the
// chunk where a stage has several ("F3.1": micro-batch 3 of chunk 1), "opt"; empty without a micro-batch.
std::string phaseLabel(storage::Phase phase, int microbatch, int chunk = -1);

struct DrawOptions {
  double minSpanPx = 3.0;    // narrower spans fold
  double minBubblePx = 1.0;  // narrower bubbles are not drawn
  bool bubbles = true;
  std::bitset<storage::kCategoryCount> hidden;  // categories the legend has switched off
  int yTop = INT_MIN, yBottom = INT_MAX;        // rows outside [yTop, yBottom) are skipped
  // Header stretches walk every visible span of a rank's first track; above this many the
  // micro-batches are a pixel or less wide and the header is left empty.
  size_t maxPhaseWalk = 8192;
};

struct DrawStats {
  size_t rows = 0, spansVisited = 0, searches = 0;
};

struct DrawList {
  TimeMapping mapping;
  std::vector<DrawItem> items;                          // by row, then by x0
  std::vector<BubbleItem> bubbles;                      // by row, then by x0
  std::vector<PhaseItem> phases;                        // by row, then by x0
  std::vector<std::pair<uint32_t, uint32_t>> rowItems;  // per layout row: [begin, end) into items
  DrawStats stats;

  std::span<const DrawItem> itemsOfRow(int row) const;
};

DrawList buildDrawList(const storage::Trace& trace, const TimelineLayout& layout, const TimeMapping& mapping,
                       const DrawOptions& options = {});

// The step extents of the trace, sorted and merged: where bubbles are looked for. From the step
// metrics; without any, the trace's whole extent.
std::vector<TimeRange> bubbleWindows(const storage::Trace& trace);

}  // namespace moescope::ui
