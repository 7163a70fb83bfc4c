// Hand-built traces for the analysis tests: ranks with one host track each, spans given as
// (rank, start, end, category, step).
#pragma once

#include <string>

#include "storage/trace.h"

namespace moescope::testing {

using storage::Category;

class TraceBuilder {
 public:
  explicit TraceBuilder(int32_t stages = 1, int32_t microbatches = 1) {
    trace_.run.pp = stages;
    trace_.run.microbatches = microbatches;
    trace_.strings = {"span"};
  }
  // Adds a rank of the stage, with one host track whose id is the rank.
  TraceBuilder& rank(int32_t rank, int32_t stage) {
    trace_.ranks.push_back({rank, stage, 0, 0, storage::kNone, "host"});
    trace_.tracks.push_back({static_cast<int32_t>(trace_.tracks.size()), rank, storage::TrackKind::HostThread,
                             "rank " + std::to_string(rank), 0, storage::kNone, storage::kNone});
    return *this;
  }
  TraceBuilder& span(int32_t rank, int64_t start, int64_t end, Category category, int32_t step = 0,
                     int64_t bytes = 0) {
    storage::SpanRecord s;
    s.track = trackOf(rank);
    s.start = start;
    s.end = end;
    s.category = category;
    s.step = step;
    s.bytes = bytes;
    storage::addSpan(trace_, s);
    return *this;
  }
  storage::Trace build() {
    storage::finishTrace(trace_);
    return trace_;
  }

 private:
  int32_t trackOf(int32_t rank) const {
    for (const auto& t : trace_.tracks) {
      if (t.rank == rank) return t.id;
    }
    return -1;
  }
  storage::Trace trace_;
};

}  // namespace moescope::testing
