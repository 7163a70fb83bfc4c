// A run loaded into memory: compact columns, sorted by (start, end) within each track, with time-window
// queries. What the analysis, the exporters and the GUI read.
//
// Resident size: 28 bytes per span in the dense columns (start 8, duration 4, name 4, step 2,
// micro-batch 2, layer 2, expert 2, category 1, phase 1, chunk 1, bytes code 1). Steps are 2 bytes relative
// to a per-track base, with a sparse side column for the rest (storage/step_column.h). Communication sizes
// repeat (an activation, a gradient bucket), so bytes are a one-byte code into a per-track table of distinct
// values; a track with more than 254 distinct sizes keeps the rest in a sparse side column, as it keeps spans
// longer than 4.29 s. Sparse entries cost 12 bytes each.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/step_column.h"
#include "storage/trace_model.h"

namespace moescope::storage {

// One span read back, gathered from the columns.
struct SpanView {
  int32_t track = 0;
  int64_t start = 0, end = 0;
  uint32_t name = 0;
  Category category = Category::ComputeAttention;
  Phase phase = Phase::None;
  int32_t step = kNone, microbatch = kNone, layer = kNone, expert = kNone;
  int64_t bytes = 0;
  int32_t chunk = kNone;
  int32_t comm = kNone, seq = kNone, peer = kNone;  // the communication call (SpanRecord)
  int64_t duration() const { return end - start; }
  bool operator==(const SpanView&) const = default;
};

// The spans of one track as parallel columns, sorted by (start, end).
struct SpanColumns {
  // duration[i] == kLongDuration: the span's duration is in long_duration (by long_index).
  static constexpr uint32_t kLongDuration = std::numeric_limits<uint32_t>::max();
  static constexpr uint8_t kBytesInSparse = 255;

  std::vector<int64_t> start;
  std::vector<uint32_t> duration;
  std::vector<uint32_t> name;
  StepColumn step;                                 // read through stepAt
  std::vector<int16_t> microbatch, layer, expert;  // kNone = -1; values beyond int16 are stored as kNone
  std::vector<Category> category;
  std::vector<Phase> phase;
  std::vector<int8_t> chunk;          // kNone = -1; values beyond int8 are stored as kNone
  std::vector<uint8_t> bytes_code;    // 0: no bytes; k < kBytesInSparse: bytes_table[k - 1]
  std::vector<int64_t> bytes_table;   // distinct byte counts of the track, at most 254
  std::vector<uint32_t> bytes_index;  // sparse: spans with code kBytesInSparse, ascending index
  std::vector<int64_t> bytes_value;
  std::vector<uint32_t> long_index;  // sparse: spans with duration >= kLongDuration, ascending index
  std::vector<int64_t> long_duration;
  // Sparse: the communication call of comm.* and wait spans that have one (SpanRecord::comm), ascending
  // index. Most spans are computation, so 16 bytes per call beat 12 bytes more per span.
  struct CommCall {
    int32_t comm = kNone, seq = kNone, peer = kNone;
    bool operator==(const CommCall&) const = default;
    auto operator<=>(const CommCall&) const = default;
  };
  std::vector<uint32_t> comm_index;
  std::vector<CommCall> comm_call;
  int64_t maxDuration = 0;  // longest span on the track

  size_t size() const { return start.size(); }
  int64_t durationAt(size_t i) const;
  int64_t endAt(size_t i) const { return start[i] + durationAt(i); }
  int32_t stepAt(size_t i) const { return step.at(i); }
  int64_t bytesAt(size_t i) const;
  CommCall commAt(size_t i) const;
  SpanView at(size_t i, int32_t track) const;
  // Indices [first, last) of the candidates for the spans that intersect [t0, t1): every span that
  // intersects is inside; a span inside may end at or before t0 (callers test endAt(i) > t0). Spans
  // may nest, so "first" comes from maxDuration and a binary search on start.
  std::pair<size_t, size_t> window(int64_t t0, int64_t t1) const;
  size_t residentBytes() const;
  bool operator==(const SpanColumns&) const = default;
};

// Appends one span at the end of the columns (the track's order is restored by sortSpans).
void appendSpan(SpanColumns& columns, const SpanRecord& span);
// Appends every span of `from` at the end of `into` (re-coding byte counts into into's table).
void appendSpans(SpanColumns& into, const SpanColumns& from);
// Sorts the columns by (start, end) if they are not sorted yet; stable for equal keys. Spans before
// `sortedBefore` are known to be sorted, so only the rest is checked (a refresh appends a few).
void sortSpans(SpanColumns& columns, size_t sortedBefore = 0);
// Frees the spare capacity of every column.
void shrinkSpans(SpanColumns& columns);

// A span that GPU records point at (gpu_activity.span is its id). The columns keep no span ids, so
// the reader keeps these spans again, with their ids, for the records to find their launching span.
struct LinkedSpan {
  int64_t id = 0;
  SpanRecord span;
  bool operator==(const LinkedSpan&) const = default;
};

struct Trace {
  RunInfo run;
  std::vector<RankInfo> ranks;    // sorted by rank
  std::vector<TrackInfo> tracks;  // indexed by track id
  // Indexed by track id. A GPU stream's track holds its GPU records that a span launched, as spans
  // with the kernel's (copy's) name and time and the launching span's category, phase, step,
  // micro-batch, layer and expert, so the timeline draws and searches them like host spans
  // (finishTrace adds them from `gpu`). The analysis reads host tracks only (activity.h).
  std::vector<SpanColumns> spans;
  std::vector<GpuActivityRecord> gpu;   // sorted by (track, start)
  std::vector<LinkedSpan> linked;       // the spans gpu records point at, by id
  std::vector<CounterSample> counters;  // sorted by (track, time)
  std::vector<StepMetric> steps;        // sorted by step
  std::vector<MoeRouting> routing;      // sorted by (step, micro-batch, layer, replica); empty without MoE
  std::vector<std::string> strings;     // the string table, indexed by name id
  std::vector<std::pair<std::string, std::string>> meta;  // sorted by key

  // The last row ids read from the file, so RunReader::refresh reads only what is new.
  struct Loaded {
    int64_t span = -1, gpu = -1, counter = -1;
    bool operator==(const Loaded&) const = default;
  } loaded;
  size_t gpuInSpans = 0;  // GPU records finishTrace has already added to their track's spans

  std::string_view name(uint32_t id) const { return id < strings.size() ? strings[id] : std::string_view{}; }
  size_t spanCount() const;   // host spans: the GPU records on stream tracks are not counted
  int64_t startTime() const;  // earliest span start (or run start)
  int64_t endTime() const;    // latest span end (or run end)
  size_t residentBytes() const;
  const RankInfo* rank(int32_t id) const;  // nullptr if the rank is unknown
  // The span a GPU record points at (GpuActivityRecord::span); nullptr for kNone or an unknown id.
  const LinkedSpan* linkedSpan(int64_t id) const;
};

// For hand-built traces (tests, generators): adds a span to its track, creating empty columns for
// tracks up to span.track; call finishTrace once all spans are in.
void addSpan(Trace& trace, const SpanRecord& span);
// Adds the GPU records not added yet to their stream tracks' spans (see Trace::spans); sorts every
// track's spans, the GPU records, the linked spans (by id, once each), counters, steps and ranks.
// sortedBefore[track]: that many spans at the front of the track are already sorted (RunReader::refresh
// passes the old sizes).
void finishTrace(Trace& trace, std::span<const size_t> sortedBefore = {});

}  // namespace moescope::storage
