// What one frame of the timeline draws, prepared before painting (Tracy's folded zones, hotspot's
// TimeLineData). For each visible row and lane, a binary search finds the spans in the visible range;
// spans at least minSpanPx wide become boxes. Runs of narrower spans fold, and a folded run is drawn
// as pixel columns that say where its time went: the shares of its two largest categories stacked
// from the bottom, the rest of its busy time grey, its idle time (inside a step: a bubble) empty.
// Columns of a few folded spans are summed from the spans; zoomed out, when a pixel covers two or more
// buckets of the lane's overview (timeline_summary.h), every column of the lane comes from the buckets,
// so a frame costs about rows x buckets in view, whatever the span count.
//
// Rank headers show the pipeline schedule: each micro-batch's forward and backward stretch while few
// spans are in view, and zoomed out the forward, backward and optimizer shares of each pixel. A GPU's
// utilisation row shows its busy share per pixel. Bubbles (a track's time inside a step that no span
// other than `wait` covers) come out of the same walk. Painting walks only this list.
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
#include "ui/timeline_summary.h"

namespace moescope::ui {

// A span wide enough to be a box of its own.
struct DrawItem {
  float x0 = 0, x1 = 0;  // time-area pixels, clipped to a little outside [0, width]
  int32_t row = 0;       // index into TimelineLayout::rows
  int32_t track = 0;
  uint32_t first = 0;  // index of the span in the track's columns
  storage::Category category = storage::Category::ComputeAttention;
  storage::Phase phase = storage::Phase::None;
  uint8_t lane = 0;
  int16_t microbatch = -1;
  bool operator==(const DrawItem&) const = default;
};

// One pixel column of folded spans, of a rank header zoomed out, or of a GPU's utilisation.
struct PixelShare {
  uint8_t share[storage::kCategoryCount] = {};       // each category's share of the pixel's time, of 255
  uint8_t busy = 0;                                  // time covered by spans (all categories), of 255
  uint8_t forward = 0, backward = 0, optimizer = 0;  // time by phase, of 255
  bool inStep = false;                               // idle time here is a bubble
  bool operator==(const PixelShare&) const = default;
};

enum class DensityKind : uint8_t { Categories, Phases, Utilisation };

// Consecutive pixel columns [x0, x0 + (end - begin)) of one row and lane.
struct DensityItem {
  int32_t row = 0;
  int32_t track = -1;  // -1 for a rank header or a utilisation row
  uint8_t lane = 0;
  DensityKind kind = DensityKind::Categories;
  int32_t x0 = 0;               // first pixel column, in time-area pixels
  uint32_t begin = 0, end = 0;  // into DrawList::pixels
  bool operator==(const DensityItem&) const = default;
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

// GPU records that no span launched (TrackSummary::unlinked), merged where closer than a pixel.
struct OutsideItem {
  float x0 = 0, x1 = 0;
  int32_t row = 0;
  int32_t track = 0;
  uint32_t first = 0, count = 1;  // positions in the track's unlinked list
  bool operator==(const OutsideItem&) const = default;
};

struct DrawOptions {
  double minSpanPx = 3.0;    // narrower spans fold
  double minBubblePx = 1.0;  // narrower bubbles are not drawn
  bool bubbles = true;
  std::bitset<storage::kCategoryCount> hidden;  // categories the legend has switched off
  int yTop = INT_MIN, yBottom = INT_MAX;        // rows outside [yTop, yBottom) are skipped
  // Header stretches walk every visible span of a rank's first track; above this many the header
  // shows the phases' shares per pixel instead.
  size_t maxPhaseWalk = 8192;
  // A folded run is summed span by span up to this many spans per pixel, and from the overview's
  // buckets beyond (a bucket of 32 spans is then up to 8 px wide): at most about 4 x 1920 x rows span
  // visits a frame (docs/bench-ui.md).
  double maxSpansPerPixelWalk = 4;
};

struct DrawStats {
  size_t rows = 0, spansVisited = 0, searches = 0, bucketsRead = 0;
};

struct DrawList {
  TimeMapping mapping;
  std::vector<DrawItem> items;                          // by row, then lane, then x0
  std::vector<DensityItem> density;                     // by row, then x0
  std::vector<PixelShare> pixels;                       // the density items' columns
  std::vector<BubbleItem> bubbles;                      // by row, then by x0
  std::vector<PhaseItem> phases;                        // by row, then by x0
  std::vector<OutsideItem> outside;                     // by row, then by x0
  std::vector<std::pair<uint32_t, uint32_t>> rowItems;  // per layout row: [begin, end) into items
  DrawStats stats;

  std::span<const DrawItem> itemsOfRow(int row) const;
  std::span<const PixelShare> columnsOf(const DensityItem& d) const {
    return std::span<const PixelShare>(pixels.data() + d.begin, d.end - d.begin);
  }
  // The density items of a row (any lane).
  std::vector<const DensityItem*> densityOfRow(int row) const;
  // Every category a box or a pixel column of this list shows.
  std::bitset<storage::kCategoryCount> categoriesShown() const;
};

DrawList buildDrawList(const storage::Trace& trace, const TimelineSummary& summary,
                       const TimelineLayout& layout, const TimeMapping& mapping,
                       const DrawOptions& options = {});

// The step extents of the trace, sorted and merged: where bubbles are looked for. From the step
// metrics; without any, the trace's whole extent.
std::vector<TimeRange> bubbleWindows(const storage::Trace& trace);

// The spans of one lane of a track, by start: the columns themselves for a flat track, else the
// lane's index list. Small, copied by value.
struct LaneView {
  const storage::SpanColumns* c = nullptr;
  const uint32_t* index = nullptr;  // nullptr: position k is span k
  size_t n = 0;

  uint32_t at(size_t k) const { return index ? index[k] : static_cast<uint32_t>(k); }
  int64_t start(size_t k) const { return c->start[at(k)]; }
  int64_t end(size_t k) const { return c->endAt(at(k)); }
  // The first position in [from, to) whose span starts at or after t.
  size_t lowerBound(int64_t t, size_t from, size_t to) const;
  // The same for a t expected close after from (exponential, then binary search).
  size_t gallop(int64_t t, size_t from, size_t to) const;
  // The first position whose span may end after t (the track's longest span as look-back).
  size_t firstEndingAfter(int64_t t) const;
};

LaneView laneView(const storage::Trace& trace, const TimelineSummary& summary, int32_t track, int lane);

}  // namespace moescope::ui
