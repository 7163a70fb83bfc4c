// Collects what the GPUs actually did through CUPTI's Activity API: kernels (NCCL's included), memcpy
// and memset, each tied to the engine span that launched it.
//
// Tying a record to its span: while an engine span is open on a thread, the span's 64-bit id is pushed
// as a CUPTI external correlation id (pushSpan/popSpan). CUPTI then emits, for every runtime or driver
// API call made on that thread, an external-correlation record mapping the call's correlation id to the
// span id; a kernel's record carries the correlation id of the call that launched it.
//
// One clock: CUPTI is given steady_clock (CLOCK_MONOTONIC) as its timestamp source before any activity
// kind is enabled, so GPU records land on the run file's clock; CUPTI itself maps the GPU's timer onto
// that source by linear interpolation.
//
// CUPTI's callbacks are process-wide: at most one collector exists at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/trace_model.h"
#include "tracer/tracer.h"

namespace moescope::tracer::gpu {

// A record as the Tracer takes it (tracer::GpuActivity): span is the launching span's id.
using GpuRecord = tracer::GpuActivity;

struct CollectorOptions {
  size_t bufferBytes = 8 << 20;  // one CUPTI activity buffer; several are in flight
  bool memcpy = true;
  bool memset = true;
};

class CuptiCollector {
 public:
  // Subscribes CUPTI and enables the activity kinds. Throws GpuTracerError if CUPTI fails (for
  // example, another profiler already owns it) or if a collector already exists.
  static std::unique_ptr<CuptiCollector> start(const CollectorOptions& options = {});
  ~CuptiCollector();  // flushes and disables
  CuptiCollector(const CuptiCollector&) = delete;
  CuptiCollector& operator=(const CuptiCollector&) = delete;

  // Marks the calling thread's CUDA work as launched by span `id` (non-zero) until popSpan.
  static void pushSpan(uint64_t id);
  static void popSpan();

  // Returns the records CUPTI handed over since the last call, sorted by start. Not final: only the
  // buffers whose records are all complete (CUPTI's default flush: no wait on the GPU); records whose
  // launching call has not been seen yet wait for a later drain. Final: every buffer (synchronize the
  // devices first), and every record.
  std::vector<GpuRecord> drain(bool final = false);
  // Records CUPTI dropped because its buffers were full, in all since start.
  uint64_t droppedRecords() const;

 private:
  CuptiCollector() = default;
};

// Sets NVTX_INJECTION64_PATH to libcupti (unless the user set it) so that NVTX ranges reach CUPTI.
// Must run before the process's first NVTX call; returns the path it set, or "" if already set.
std::string arrangeNvtxInjection();

}  // namespace moescope::tracer::gpu
