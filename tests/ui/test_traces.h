// Small traces built in memory for the UI tests.
#pragma once

#include <initializer_list>
#include <string>

#include "storage/trace.h"

namespace moescope::ui::test {

struct SpanSpec {
  int32_t track = 0;
  int64_t start = 0, end = 0;
  storage::Category category = storage::Category::ComputeAttention;
  storage::Phase phase = storage::Phase::Forward;
  int32_t microbatch = storage::kNone;
  int64_t bytes = 0;
};

// ranks ranks, one host track each (track i on rank i, stage i); spans as given; names "span".
inline storage::Trace makeTrace(int ranks, std::initializer_list<SpanSpec> spans) {
  storage::Trace trace;
  trace.strings = {"span", "attention", "tp_allreduce"};
  for (int r = 0; r < ranks; ++r) {
    storage::RankInfo rank;
    rank.rank = r;
    rank.stage = r;
    trace.ranks.push_back(rank);
    storage::TrackInfo track;
    track.id = r;
    track.rank = r;
    track.name = "rank " + std::to_string(r) + " host";
    trace.tracks.push_back(track);
  }
  trace.spans.resize(static_cast<size_t>(ranks));
  for (const auto& s : spans) {
    storage::SpanRecord rec;
    rec.track = s.track;
    rec.start = s.start;
    rec.end = s.end;
    rec.name = 0;
    rec.category = s.category;
    rec.phase = s.phase;
    rec.microbatch = s.microbatch;
    rec.step = 0;
    rec.bytes = s.bytes;
    storage::addSpan(trace, rec);
  }
  storage::finishTrace(trace);
  return trace;
}

// Adds a GPU stream's track (id: the next one) to rank's tracks, in order after them; returns its id.
inline int32_t addStream(storage::Trace& trace, int32_t rank = 0, int32_t device = 0, std::string name = {}) {
  storage::TrackInfo stream;
  stream.id = static_cast<int32_t>(trace.tracks.size());
  stream.rank = rank;
  stream.kind = storage::TrackKind::GpuStream;
  stream.order = stream.id;
  stream.device = device;
  stream.name =
      name.empty() ? "GPU " + std::to_string(device) + " stream " + std::to_string(stream.id) : name;
  trace.tracks.push_back(stream);
  if (trace.spans.size() < trace.tracks.size()) trace.spans.resize(trace.tracks.size());
  return stream.id;
}

}  // namespace moescope::ui::test
