// What the timeline prepares once per load (and again when a live run grows), beside the span columns,
// so that every zoom reads at a glance:
// - lanes: spans that nest (a layer inside a micro-batch inside a step) are packed into depth lanes,
//   as every trace viewer draws them; a flat track has one lane and costs nothing;
// - an overview per lane: fixed-width time buckets holding the shares of the four categories that
//   take most of a bucket's time, the busy share, and the forward, backward and optimizer shares. Zoomed
//   out, a pixel's colours come from the buckets under it (Perfetto's and Tracy's summaries), so a
//   frame of 10M spans reads about 300k buckets, not 10M spans. Buckets hold about 32 spans each on
//   average: 16 bytes per 32 spans, 0.5 B per span (docs/bench-ui.md);
// - per GPU, the union of its streams' busy intervals with prefix sums, for utilisation rows: the busy
//   time of any pixel in two binary searches;
// - per GPU stream, its role (compute, NCCL, copy) from what ran on it, and the GPU records that no
//   span launched (start-up copies before the first step), which the span columns leave out.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/trace.h"
#include "ui/time_mapping.h"

namespace moescope::ui {

// ZB-H1's weight passes (BackwardWeight) are backward work: summed, shaded and hatched with the
// backward pass; their labels (W3) tell them apart.
inline bool shadedAsBackward(storage::Phase p) {
  return p == storage::Phase::Backward || p == storage::Phase::BackwardWeight;
}

// A bucket or pixel slot with no category.
inline constexpr uint8_t kNoCategory = 0xff;

// What ran on a GPU stream, by count of records: NCCL kernels only (at most 1 in 20 others), other
// kernels only (at most 1 in 20 NCCL), both, or only copies and memsets. None for host tracks. By count,
// not time: an NCCL kernel that waits for its peer can take most of a compute stream's time.
enum class StreamRole : uint8_t { None, Compute, Nccl, ComputeNccl, Copy };
// "compute", "NCCL", "compute + NCCL", "copy", "".
const char* streamRoleName(StreamRole role);

inline constexpr int kBucketCategories = 4;

struct OverviewBucket {
  // The categories with most time, most first, and their time over the bucket's width, of 255.
  uint8_t category[kBucketCategories] = {kNoCategory, kNoCategory, kNoCategory, kNoCategory};
  uint8_t share[kBucketCategories] = {0, 0, 0, 0};
  uint8_t busy = 0;                                  // time covered by the lane's spans, of 255
  uint8_t forward = 0, backward = 0, optimizer = 0;  // time by phase, of 255
  uint8_t spare[4] = {0, 0, 0, 0};
  bool operator==(const OverviewBucket&) const = default;
};
static_assert(sizeof(OverviewBucket) == 16, "the overview's size per span is budgeted in docs/bench-ui.md");

struct LaneOverview {
  int64_t origin = 0;  // start of bucket 0
  int shift = 0;       // a bucket is 2^shift ns wide
  std::vector<OverviewBucket> buckets;
  int64_t width() const { return int64_t(1) << shift; }
  bool empty() const { return buckets.empty(); }
};

struct TrackSummary {
  // The spans of each lane, as indices into the track's columns, by start. Empty for a flat track:
  // then lane 0 is the columns themselves.
  std::vector<std::vector<uint32_t>> lanes;
  // The lane of each span; empty for a flat track.
  std::vector<uint8_t> laneOf;
  // Per lane; empty for a track with few spans (drawn from its spans at every zoom).
  std::vector<LaneOverview> overview;
  StreamRole role = StreamRole::None;
  // GPU records on this stream that no span launched: indices into Trace::gpu, by start.
  std::vector<uint32_t> unlinked;

  int laneCount() const { return lanes.empty() ? 1 : static_cast<int>(lanes.size()); }
  int laneOfSpan(uint32_t index) const { return index < laneOf.size() ? laneOf[index] : 0; }
};

// One GPU's busy time: the union of the intervals of every record on its streams.
struct DeviceBusy {
  int32_t device = 0;
  int32_t rank = 0;                 // the rank whose tracks hold the device's streams
  std::vector<int64_t> start, end;  // merged intervals, sorted, disjoint
  std::vector<int64_t> before;      // busy time before interval i
  // Busy nanoseconds inside [a, b).
  int64_t busyIn(int64_t a, int64_t b) const;
};

struct SummaryOptions {
  // A lane gets an overview when it holds at least this many spans; smaller ones are drawn from
  // their spans at every zoom (a few thousand span visits a frame at most).
  size_t overviewFromSpans = 4096;
  // Average spans per overview bucket (rounded to a power-of-two bucket width).
  int spansPerBucket = 32;
};

struct TimelineSummary {
  std::vector<TrackSummary> tracks;  // by track id
  std::vector<DeviceBusy> devices;   // by device
  TimeRange extent;                  // spans and GPU records together (Trace extent plus unlinked records)

  const TrackSummary* track(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < tracks.size() ? &tracks[static_cast<size_t>(id)] : nullptr;
  }
  int laneCount(int32_t track) const {
    const TrackSummary* t = this->track(track);
    return t ? t->laneCount() : 1;
  }
  StreamRole role(int32_t track) const {
    const TrackSummary* t = this->track(track);
    return t ? t->role : StreamRole::None;
  }
  size_t residentBytes() const;
};

TimelineSummary summarizeTrace(const storage::Trace& trace, const SummaryOptions& options = {});

// The lanes of one track's spans by greedy packing: a span goes into the first lane whose last span
// has ended by its start, so a span inside another goes one lane below it. Returns the lane of each
// span (all 0 for a flat track) and the lane count.
std::vector<uint8_t> packLanes(const storage::SpanColumns& c, int* laneCount);

}  // namespace moescope::ui
