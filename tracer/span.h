// The span API the engine is instrumented with. A ScopedSpan measures one phase of one rank (RAII) and
// hands it to its TrackRecorder, which appends it to a fixed-size chunk that only its own thread
// writes; the Tracer's background thread reads published spans from the chunks, interns their names
// and writes them to the run file, so tracing never waits on SQLite or on a lock.
// A null recorder (tracing off) makes every span a single branch. Time: steady_clock nanoseconds
// (CLOCK_MONOTONIC), the run file's one clock.
//
//   tracer::ScopedSpan s(recorder, "attention",
//                        {.category = Category::ComputeAttention, .phase = Phase::Forward,
//                         .step = step, .microbatch = mb, .layer = layer});
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "storage/trace_model.h"

namespace moescope::tracer {

using storage::Category;
using storage::Phase;

inline int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct SpanAttrs {
  Category category = Category::ComputeAttention;
  Phase phase = Phase::None;
  int32_t step = storage::kNone;
  int32_t microbatch = storage::kNone;
  int32_t layer = storage::kNone;
  int32_t expert = storage::kNone;
  int64_t bytes = 0;
};

class Tracer;

// Records the spans of one track (a rank's host thread). Used by one thread at a time; created and
// owned by the Tracer (Tracer::hostTrack), valid until the Tracer is destroyed.
class TrackRecorder {
 public:
  // name must stay valid until the Tracer has finished: pass string literals or strings the Tracer
  // interned (Tracer::intern). The recorder copies only the pointer and the length.
  void record(std::string_view name, const SpanAttrs& attrs, int64_t start, int64_t end);
  int32_t track() const { return track_; }
  // Asks the Tracer to write what is buffered now rather than at its next periodic flush.
  void flush();

  ~TrackRecorder();
  TrackRecorder(const TrackRecorder&) = delete;
  TrackRecorder& operator=(const TrackRecorder&) = delete;

 private:
  friend class Tracer;
  struct Chunk;
  TrackRecorder(Tracer* tracer, int32_t track);
  Chunk* grow();  // publishes the full chunk's successor and makes it current

  Tracer* tracer_ = nullptr;
  int32_t track_ = 0;
  Chunk* current_ = nullptr;  // written by the recording thread only
  uint32_t used_ = 0;         // spans in current_, mirrored to current_->count with release order
  // Read side, touched by the Tracer's flush thread only.
  Chunk* head_ = nullptr;
  uint32_t consumed_ = 0;
};

// One traced phase. recorder == nullptr: tracing is off and nothing is measured.
class ScopedSpan {
 public:
  ScopedSpan(TrackRecorder* recorder, std::string_view name, const SpanAttrs& attrs)
      : recorder_(recorder), name_(name), attrs_(attrs), start_(recorder ? nowNs() : 0) {}
  ~ScopedSpan() {
    if (recorder_) recorder_->record(name_, attrs_, start_, nowNs());
  }
  ScopedSpan(const ScopedSpan&) = delete;
  ScopedSpan& operator=(const ScopedSpan&) = delete;
  void setBytes(int64_t bytes) { attrs_.bytes = bytes; }

 private:
  TrackRecorder* recorder_;
  std::string_view name_;
  SpanAttrs attrs_;
  int64_t start_;
};

}  // namespace moescope::tracer
