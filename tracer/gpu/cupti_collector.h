// Collects what the GPUs actually did through CUPTI's Activity API: kernels (NCCL's included), memcpy
// and memset, each tied to the engine span that launched it.
//
// Tying a record to its span: every activity record carries the correlation id of the API call that
// launched its work. pushSpan/popSpan keep, per thread, the stack of open engine spans (no CUPTI call).
// Two ways to learn which span a call was made in (CollectorOptions::correlation):
//   - Callbacks (the default): a CUPTI callback subscriber enabled on the calls that launch GPU work
//     only (kernel launches, memcpy, memset, graph launches of the runtime and driver APIs; the table
//     is in cupti_collector.cpp). At each such call's entry the callback notes (correlation id, the
//     calling thread's innermost open span, or 0) in a log of that thread; the drain reads the logs.
//     Other API calls (cudaStreamQuery spin-polls, events, allocations) cost CUPTI nothing.
//   - ActivityRecords (the old way, kept for comparison): the span's id is pushed as a CUPTI external
//     correlation id while it is open, and CUPTI records every runtime and driver API call, with an
//     external-correlation record for each call made inside a span.
// The call -> span table is bounded: an entry is kept for one to two generations (a generation is 2^18
// watched calls), matched or not (a graph launch's kernels share one id).
//
// Buffers: CUPTI hands a buffer over when it is full (Flush::WhenFull, the default) or when asked
// (Flush::OnDrain: cuptiActivityFlushAll at every drain). Asking costs: on 2 x H200 the call took up to
// 140 ms and held up the launching threads meanwhile (docs/bench-gputrace.md), so by default nothing is
// asked until the final drain, and the buffers are small enough to fill every second or so. A buffer
// CUPTI hands back is kept for its next request (a few at most), so that the launching thread, which
// asks for buffers, neither allocates nor touches fresh pages once the run is going.
//
// One clock: CUPTI is given steady_clock (CLOCK_MONOTONIC) as its timestamp source before any activity
// kind is enabled, so GPU records land on the run file's clock; CUPTI itself maps the GPU's timer onto
// that source by linear interpolation.
//
// CUPTI's callbacks are process-wide: at most one collector exists at a time. With Callbacks the
// collector is CUPTI's one subscriber, so it cannot start under Nsight Systems or another CUPTI tool.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage/trace_model.h"
#include "tracer/gpu_trace_options.h"  // Correlation, Flush
#include "tracer/tracer.h"

namespace moescope::tracer::gpu {

// A record as the Tracer takes it (tracer::GpuActivity): span is the launching span's id.
using GpuRecord = tracer::GpuActivity;

// Whether and how the watched calls themselves are kept (drainLaunchCalls): their thread, entry and exit
// time, so that a recording can tie GPU records to what the calling thread was doing (tracer/inject/).
enum class LaunchCalls {
  Off,
  // CUPTI's API activity records, enabled for the watched calls only (cuptiActivityEnableRuntimeApi and
  // cuptiActivityEnableDriverApi, as PyTorch's profiler does): CUPTI writes a 40-byte record into its
  // activity buffer of the calling thread and no code of the collector runs on that thread.
  Activity,
  // A callback of the collector at each watched call's entry and exit: an uncontended lock and a
  // vector append on the calling thread, on top of CUPTI's own cost of entering a subscriber's callback.
  Callbacks,
};

struct CollectorOptions {
  size_t bufferBytes = 8 << 20;  // one CUPTI activity buffer; several are in flight
  bool memcpy = true;
  bool memset = true;
  // Tie records to spans (pushSpan). Off (a recorded program has no spans): no span correlation at all,
  // no callback for it, every record carries span 0, correlation is ignored.
  bool spans = true;
  Correlation correlation = Correlation::Callbacks;
  Flush flush = Flush::WhenFull;
  uint32_t flushPeriodMs = 200;  // Worker
  LaunchCalls launchCalls = LaunchCalls::Off;
};

// Thrown by CuptiCollector::start when CUPTI refuses LaunchCalls::Activity's records of single API calls
// (and nothing before failed): LaunchCalls::Callbacks may still work.
class LaunchCallRecordsRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A call that put GPU work on a stream (CollectorOptions::launchCalls).
struct LaunchCall {
  uint32_t correlation = 0;
  int64_t start = 0, end = 0;  // steady_clock ns, at the call's entry and exit
  int64_t thread = 0;          // OS thread id
  const char* name = "";       // CUPTI's name of the API function, static
};

class CuptiCollector {
 public:
  // Subscribes CUPTI and enables the activity kinds. Throws GpuTracerError if CUPTI fails (for
  // example, another profiler already owns it) or if a collector already exists.
  static std::unique_ptr<CuptiCollector> start(const CollectorOptions& options = {});
  ~CuptiCollector();  // unsubscribes, flushes and disables
  CuptiCollector(const CuptiCollector&) = delete;
  CuptiCollector& operator=(const CuptiCollector&) = delete;

  // Marks the calling thread's CUDA work as launched by span `id` (non-zero) until popSpan. Spans
  // nest: the innermost open one is the launching span.
  static void pushSpan(uint64_t id);
  static void popSpan();

  // Returns the records CUPTI handed over since the last call, sorted by start. Not final: with
  // Flush::OnDrain, first asks for the buffers whose records are all complete (CUPTI's default flush:
  // no wait on the GPU); otherwise takes what CUPTI handed over by itself. With
  // ActivityRecords, a record whose launching call has not been seen yet waits for a later drain (two
  // generations at most, then goes out with span 0). Final: every buffer (synchronize the devices
  // first), and every record.
  std::vector<GpuRecord> drain(bool final = false);
  // The watched calls logged since the last call (CollectorOptions::launchCalls), in no particular order.
  // With Activity, a call is here once CUPTI handed over the buffer that holds its record (as the
  // records drain returns).
  std::vector<LaunchCall> drainLaunchCalls();
  // Records CUPTI dropped because its buffers were full, in all since start.
  uint64_t droppedRecords() const;
  // With Callbacks: records, in all since start, whose launching call no callback saw (launched
  // through an API missing from the table, or delivered after their call's entry was dropped); they
  // go out with span 0. Always 0 with ActivityRecords.
  uint64_t unmatchedRecords() const;
  Correlation correlation() const;

 private:
  CuptiCollector() = default;
};

// Sets NVTX_INJECTION64_PATH to libcupti (unless the user set it) so that NVTX ranges reach CUPTI.
// Must run before the process's first NVTX call; returns the path it set, or "" if already set.
std::string arrangeNvtxInjection();

}  // namespace moescope::tracer::gpu
