// A run loaded into memory: compact columns, sorted by start within each track, with time-window
// queries. What the analysis, the exporters and the GUI read. Target: at most 32 bytes resident per
// span (the columns below: 8 + 8 + 4 + 4 + 2 + 2 + 2 + 1 + 1 = 32; bytes are kept only for the
// communication spans that carry them).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
  int64_t duration() const { return end - start; }
  bool operator==(const SpanView&) const = default;
};

// The spans of one track as parallel columns, sorted by (start, end).
struct SpanColumns {
  std::vector<int64_t> start, end;
  std::vector<uint32_t> name;
  std::vector<int32_t> step;
  std::vector<int16_t> microbatch, layer, expert;  // kNone = -1
  std::vector<Category> category;
  std::vector<Phase> phase;
  std::vector<std::pair<uint32_t, int64_t>> bytes;  // (index, bytes) for spans with bytes > 0, by index

  size_t size() const { return start.size(); }
  SpanView at(size_t i, int32_t track) const;
  int64_t bytesAt(size_t i) const;
  // Indices [first, last) of the spans that intersect [t0, t1). Spans may nest, so "first" comes from
  // the longest span's duration on the track (kept in maxDuration) and a binary search.
  std::pair<size_t, size_t> window(int64_t t0, int64_t t1) const;
  int64_t maxDuration = 0;
  size_t residentBytes() const;
};

struct Trace {
  RunInfo run;
  std::vector<RankInfo> ranks;
  std::vector<TrackInfo> tracks;          // indexed by track id
  std::vector<SpanColumns> spans;         // indexed by track id
  std::vector<GpuActivityRecord> gpu;     // sorted by (track, start)
  std::vector<CounterSample> counters;    // sorted by (track, time)
  std::vector<StepMetric> steps;          // sorted by step
  std::vector<std::string> strings;       // the string table, indexed by name id
  std::vector<std::pair<std::string, std::string>> meta;

  std::string_view name(uint32_t id) const { return id < strings.size() ? strings[id] : std::string_view{}; }
  size_t spanCount() const;
  int64_t startTime() const;  // earliest span start (or run start)
  int64_t endTime() const;    // latest span end (or run end)
  size_t residentBytes() const;
};

}  // namespace moescope::storage
