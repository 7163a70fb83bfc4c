// The span API the engine is instrumented with. A ScopedSpan measures one phase of one rank (RAII) and
// hands it to its TrackRecorder, which appends it to a fixed-size chunk that only its own thread
// writes; the Tracer's background thread reads published spans from the chunks, interns their names
// and writes them to the run file, so tracing never waits on SQLite or on a lock.
// A null recorder (tracing off) makes every span a single branch. Time: steady_clock nanoseconds
// (CLOCK_MONOTONIC), the run file's one clock.
//
// Span ids: every span gets a 64-bit id when it opens, (track + 1) << 40 | the track's open count, so
// ids are unique within a run and never 0. While a span is open, optional hooks (SpanHooks) see its id:
// the GPU tracer installs them to mark the span open on its thread for CUPTI (tracer/gpu/cupti_collector.h)
// and to open an NVTX range, so the kernels a span launches carry its id. Without hooks, an open costs one
// pointer test.
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

namespace detail {
inline std::atomic<int64_t> g_clockShiftNs{0};
}

inline int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
             .count() +
         detail::g_clockShiftNs.load(std::memory_order_relaxed);
}

// Tests only (moescope-cli train's MOESCOPE_TEST_CLOCK_SKEW_NS): moves this process's clock by ns, as
// on a host whose clock is off, so that a test can show a multi-process run realigned. One relaxed load
// per reading, free beside reading the clock.
inline void shiftClockForTests(int64_t ns) {
  detail::g_clockShiftNs.store(ns, std::memory_order_relaxed);
}

struct SpanAttrs {
  Category category = Category::ComputeAttention;
  Phase phase = Phase::None;
  int32_t step = storage::kNone;
  int32_t microbatch = storage::kNone;
  int32_t layer = storage::kNone;
  int32_t expert = storage::kNone;
  int64_t bytes = 0;
  int32_t chunk = storage::kNone;  // the stage's model chunk (interleaved schedule)
  // The communication call (storage::SpanRecord::comm): communicator, sequence number, peer.
  int32_t comm = storage::kNone, seq = storage::kNone, peer = storage::kNone;
};

class Tracer;

// What the GPU part of the tracer does when a span opens and closes on a thread (tracer/gpu installs
// them; the host tracer builds without CUDA). open and close nest like the spans themselves.
struct SpanHooks {
  void (*open)(uint64_t id, std::string_view name, Category category) = nullptr;
  void (*close)() = nullptr;
};

namespace detail {
inline std::atomic<const SpanHooks*> g_spanHooks{nullptr};
}

// Installs hooks (nullptr removes them). Install before the engine's threads start recording and
// remove after they stop; the hooks must stay valid while installed.
inline void setSpanHooks(const SpanHooks* hooks) {
  detail::g_spanHooks.store(hooks, std::memory_order_release);
}
inline const SpanHooks* spanHooks() {
  return detail::g_spanHooks.load(std::memory_order_relaxed);
}

// Span ids of one track: (track + 1) << kSpanSeqBits | sequence.
inline constexpr int kSpanSeqBits = 40;
inline constexpr int32_t spanTrackOf(uint64_t id) {
  return static_cast<int32_t>(id >> kSpanSeqBits) - 1;
}

// Records the spans of one track (a rank's host thread). Used by one thread at a time; created and
// owned by the Tracer (Tracer::hostTrack), valid until the Tracer is destroyed.
class TrackRecorder {
 public:
  // name must stay valid until the Tracer has finished: pass string literals or strings the Tracer
  // interned (Tracer::intern). The recorder copies only the pointer and the length.
  // id: the span's id from open(), or 0 for a new one (a span measured after the fact).
  void record(std::string_view name, const SpanAttrs& attrs, int64_t start, int64_t end, uint64_t id = 0);
  int32_t track() const { return track_; }

  // Opens a span: returns its id and lets the hooks (if any) mark the work launched until close().
  // For spans recorded after the fact (a collective whose span starts once every peer has arrived):
  //   uint64_t id = rec->open("tp_allreduce", cat); launch(); rec->close(); ... rec->record(..., id);
  uint64_t open(std::string_view name, Category category) {
    const uint64_t id = nextId();
    if (const SpanHooks* h = spanHooks()) h->open(id, name, category);
    return id;
  }
  void close() {
    if (const SpanHooks* h = spanHooks()) h->close();
  }
  uint64_t nextId() { return idBase_ | ++opened_; }
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
  uint64_t idBase_ = 0;       // (track + 1) << kSpanSeqBits
  uint64_t opened_ = 0;       // spans opened on this track so far (recording thread only)
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
      : recorder_(recorder), name_(name), attrs_(attrs) {
    if (recorder_) {
      id_ = recorder_->open(name, attrs.category);
      start_ = nowNs();
    }
  }
  ~ScopedSpan() {
    if (recorder_) {
      const int64_t end = nowNs();
      recorder_->close();
      recorder_->record(name_, attrs_, start_, end, id_);
    }
  }
  ScopedSpan(const ScopedSpan&) = delete;
  ScopedSpan& operator=(const ScopedSpan&) = delete;
  void setBytes(int64_t bytes) { attrs_.bytes = bytes; }
  uint64_t id() const { return id_; }  // 0 when tracing is off

 private:
  TrackRecorder* recorder_;
  std::string_view name_;
  SpanAttrs attrs_;
  int64_t start_ = 0;
  uint64_t id_ = 0;
};

}  // namespace moescope::tracer
