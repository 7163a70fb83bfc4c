// The span API the engine is instrumented with. A ScopedSpan measures one phase of one rank (RAII) and
// hands it to its TrackRecorder, which buffers spans in thread-local chunks; the Tracer's background
// thread interns names and writes full chunks to the run file, so tracing never waits on SQLite.
// A null recorder (tracing off) makes every span a single branch. Time: steady_clock nanoseconds
// (CLOCK_MONOTONIC), the run file's one clock.
#pragma once

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

// Records the spans of one track (a rank's host thread). Used by one thread at a time.
class TrackRecorder {
 public:
  // name must outlive the recorder's next flush: pass string literals or strings the Tracer interned
  // (Tracer::intern). The recorder copies nothing but the pointer and length.
  void record(std::string_view name, const SpanAttrs& attrs, int64_t start, int64_t end);
  int32_t track() const { return track_; }
  // Hands buffered spans to the Tracer now (also done when a chunk fills and by Tracer::finish).
  void flush();

 private:
  friend class Tracer;
  TrackRecorder(Tracer* tracer, int32_t track) : tracer_(tracer), track_(track) {}
  struct Pending;
  Tracer* tracer_ = nullptr;
  int32_t track_ = 0;
  void* chunk_ = nullptr;  // owned by the Tracer's chunk pool
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
