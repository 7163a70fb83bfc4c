// The GPU tracer: what the GPUs did, in the run file beside the host spans. It owns the CUPTI
// collector, installs the span hooks (every span an NVTX range in the "moescope" domain unless
// options.nvtx is off, and the span marked open on its thread so that the collector ties the work
// launched in it to its id), hands CUPTI's records to the Tracer from a background thread, and at
// finish writes the last ones and, in the run's meta, how records were tied to spans
// ("cupti.correlation": callbacks or activity; "cupti.nvtx"), CUPTI's dropped-record count
// ("cupti.dropped_records") and, with callbacks, the records whose launching call was not seen
// ("cupti.unmatched_records").
//
//   gpu::arrangeNvtxInjection();                 // at process start, before any NVTX or NCCL call
//   auto tracer = Tracer::open(path, run);
//   auto gpuTracer = gpu::GpuTracer::start(*tracer);
//   ... train ...
//   gpuTracer->finish();                         // before tracer->finish
//   tracer->finish(RunStatus::Complete, "");
//
// Draining: CUPTI hands over a buffer once every record in it is complete; the thread asks for such
// buffers every drainPeriod (a default flush, which never waits on the GPU and adds no sync), and
// finish() synchronizes every device and forces out the rest. Buffers: a few of bufferBytes each are
// in flight; 32 MiB hold about 200 000 kernel records, so the sample configs drop nothing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "tracer/gpu/cupti_collector.h"
#include "tracer/gpu_trace_options.h"
#include "tracer/tracer.h"

namespace moescope::tracer::gpu {

struct GpuTracerOptions {
  std::chrono::milliseconds drainPeriod{200};
  size_t bufferBytes = size_t{4} << 20;
  bool nvtx = true;                                  // spans as NVTX ranges too
  Correlation correlation = Correlation::Callbacks;  // how records are tied to spans (cupti_collector.h)
  Flush flush = Flush::WhenFull;                     // how CUPTI's buffers come in (cupti_collector.h)

  // These defaults with the environment's choices (tracer/gpu_trace_options.h).
  static GpuTracerOptions from(const GpuTraceSettings& settings) {
    GpuTracerOptions options;
    options.nvtx = settings.nvtx;
    options.correlation = settings.correlation;
    options.flush = settings.flush;
    return options;
  }
};

class GpuTracer {
 public:
  // Starts CUPTI and installs the span hooks; throws GpuTracerError when CUPTI cannot start. At most
  // one at a time (CUPTI is process-wide).
  static std::unique_ptr<GpuTracer> start(Tracer& tracer, const GpuTracerOptions& options = {});
  ~GpuTracer();  // finish() if not called
  GpuTracer(const GpuTracer&) = delete;
  GpuTracer& operator=(const GpuTracer&) = delete;

  // Removes the hooks, synchronizes every device, hands the remaining records to the Tracer and writes
  // the dropped count. Call after the engine's threads stopped and before Tracer::finish. Later calls
  // do nothing.
  void finish();

  int64_t recordsHanded() const { return handed_; }
  uint64_t droppedRecords() const;

 private:
  GpuTracer(Tracer& tracer, std::unique_ptr<CuptiCollector> collector, const GpuTracerOptions& options);
  void drainLoop();

  Tracer& tracer_;
  std::unique_ptr<CuptiCollector> collector_;
  GpuTracerOptions options_;
  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool stop_ = false;
  bool finished_ = false;
  int64_t handed_ = 0;
  int64_t drainMaxNs_ = 0;  // the longest drain, in the run's meta as cupti.drain_ms_max
  std::thread thread_;
};

}  // namespace moescope::tracer::gpu
