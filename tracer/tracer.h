// The host-side tracer: owns the run file's writer and a background thread that drains every
// TrackRecorder's chunks, interns span names, writes counters, step metrics and metadata, and commits
// every flush period (100 ms by default), so a reader (the GUI) can watch the file grow. Calls from
// the engine's threads only take a short lock on in-memory queues; SQLite is touched by the flush
// thread alone (and by open() and finish()).
//
//   auto tracer = tracer::Tracer::open("run.moescope", runInfo);
//   tracer->addRank({.rank = 0, .stage = 0});
//   TrackRecorder* host = tracer->hostTrack(0, "rank 0 host");
//   { tracer::ScopedSpan s(host, "attention", {.category = Category::ComputeAttention}); ... }
//   tracer->finish(storage::RunStatus::Complete, "");
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "storage/trace_model.h"
#include "tracer/span.h"

namespace moescope::storage {
class RunWriter;
}

namespace moescope::tracer {

// One record of what a GPU did (from CUPTI, through tracer/gpu): a kernel, memcpy or memset, with the
// id of the span that launched it (SpanHooks), 0 if none was open.
struct GpuActivity {
  storage::GpuActivityKind kind = storage::GpuActivityKind::Kernel;
  int64_t start = 0, end = 0;  // steady_clock ns
  std::string name;            // demangled kernel name, or "memcpy HtoD", "memset"
  int32_t device = 0;
  int64_t stream = 0;
  uint32_t correlation = 0;
  uint64_t span = 0;             // the launching span's id (TrackRecorder::open), 0 when none was open
  int64_t bytes = 0;             // memcpy and memset size
  storage::KernelLaunch launch;  // kernels: grid, block, registers, shared memory
  bool operator==(const GpuActivity&) const = default;
};

class Tracer {
 public:
  struct Options {
    std::chrono::milliseconds flushPeriod{100};
    // Spans wait in chunks of 1024 (64 KiB) until the flush thread writes them. If the engine records
    // faster than SQLite writes for long enough to fill this many chunks (1 GiB by default), further
    // spans are dropped and counted (droppedSpans, and "tracer.dropped_spans" in the run's meta).
    int64_t maxBufferedChunks = 16384;
  };
  // Creates the run file (replacing one at path) and starts the flush thread. Throws
  // storage::StorageError when the file cannot be created.
  static std::unique_ptr<Tracer> open(const std::filesystem::path& path, const storage::RunInfo& run);
  static std::unique_ptr<Tracer> open(const std::filesystem::path& path, const storage::RunInfo& run,
                                      Options options);
  // Finishes with status Failed ("the run ended without finishing its trace") if finish was not called.
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  void addRank(const storage::RankInfo& rank);
  // A new host-thread track of the rank; the recorder lives as long as the Tracer. Thread-safe.
  TrackRecorder* hostTrack(int32_t rank, std::string name);
  // A new counter track of the rank (tokens per expert, memory); returns its track id. Thread-safe.
  int32_t counterTrack(int32_t rank, std::string name);
  void stepMetric(const storage::StepMetric& metric);
  void counter(int32_t track, int64_t time, double value);
  // How routing groups were routed at MoE layers (the run file's moe_routing tables). Thread-safe.
  void moeRouting(std::vector<storage::MoeRouting> groups);
  void setMeta(std::string key, std::string value);

  // GPU records: call linkGpuActivity() before the spans that launch GPU work are recorded, so the
  // flush thread keeps each span's row id for the records that arrive after it. gpuActivity() queues
  // records (any order, any thread); each goes on the track of its (device, stream), made on first
  // use under the rank whose RankInfo::device is the record's device, and is written with its span's
  // row id once that span is written (kNone if the span is unknown when the run finishes).
  void linkGpuActivity();
  void gpuActivity(std::vector<GpuActivity> records);
  // GPU records written so far, and those written without their span.
  int64_t gpuRecordsWritten() const;
  int64_t gpuRecordsUnlinked() const;
  // A copy of text that stays valid as long as the Tracer, for span names built at run time.
  std::string_view intern(std::string_view text);

  // Writes everything still buffered, sets the run's status, error text and end time, commits and
  // stops the flush thread. Call it once the engine's threads have stopped recording; spans recorded
  // afterwards are dropped. Later calls do nothing. When a write failed (error() is set), what was
  // not committed is given up and the run is marked failed with that error instead. Throws
  // storage::StorageError only when even the status could not be written (what was committed before
  // stays readable).
  void finish(storage::RunStatus status, std::string error);
  // The first write to the run file that failed (a full disk), empty while every write succeeded. The
  // flush thread stops writing after it; the engine can poll this to stop the run early.
  std::string error() const;

  // Spans written to the file so far (by the flush thread).
  int64_t spansWritten() const;
  // Spans dropped because the buffer limit was reached (Options::maxBufferedChunks).
  int64_t droppedSpans() const;

 private:
  friend class TrackRecorder;
  Tracer(std::unique_ptr<storage::RunWriter> writer, Options options);
  void wake();
  void flushLoop();
  void drain();         // flush thread (or finish, after the thread stopped): writes what is pending
  bool reserveChunk();  // a recording thread asks for one more chunk; false at the limit

  struct Pending;
  void writeGpu(Pending& taken, bool final);
  std::unique_ptr<storage::RunWriter> writer_;
  Options options_;
  std::unique_ptr<Pending> pending_;  // queues filled by engine threads, under mutex_
  mutable std::mutex mutex_;
  std::condition_variable wakeup_;
  bool stop_ = false;
  bool flushRequested_ = false;
  bool finished_ = false;
  int32_t nextTrack_ = 0;
  std::unordered_map<int32_t, int32_t> tracksPerRank_;
  std::unordered_map<int32_t, int32_t> rankOfDevice_;
  std::map<std::pair<int32_t, int64_t>, int32_t> streamTracks_;  // (device, stream) -> track
  bool linkGpu_ = false;
  std::vector<std::unique_ptr<TrackRecorder>> recorders_;
  std::unordered_set<std::string> interned_;
  std::string flushError_;  // set by the flush thread when writing failed; it then stops writing
  std::atomic<int64_t> spansWritten_{0};
  std::atomic<int64_t> liveChunks_{0};
  std::atomic<int64_t> droppedSpans_{0};
  std::atomic<int64_t> gpuWritten_{0};
  std::atomic<int64_t> gpuUnlinked_{0};
  std::thread thread_;
};

}  // namespace moescope::tracer
