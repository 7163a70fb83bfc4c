// The GPU tracer's switches, read from the environment: the tracing-overhead benchmark flips them
// (bench/tracer/run_gputrace_h200.sh, docs/bench-gputrace.md). One table holds every variable, the
// values it takes (the first is the default) and what each does; moescope-cli train reads it once, before
// anything runs, and refuses a value the table does not list.
//
// Plain C++ in the host tracer, not in tracer/gpu: a build without CUDA refuses a bad value the same way.
#pragma once

#include <functional>
#include <span>
#include <string>

#include "base/env_switches.h"

namespace moescope::tracer::gpu {

// How CUPTI's records are tied to spans (cupti_collector.h).
enum class Correlation {
  Callbacks,        // callbacks on the launching calls only
  ActivityRecords,  // external correlation ids, with runtime and driver API records for every call
};

// How CUPTI's buffers reach the collector while the run goes on (the final drain forces out the rest).
enum class Flush {
  WhenFull,  // no flush: CUPTI hands a buffer over when it is full
  OnDrain,   // each drain asks CUPTI for its completed buffers (cuptiActivityFlushAll, not forced)
  Worker,    // CUPTI's worker thread wakes every flushPeriodMs (cuptiActivityFlushPeriod; it too hands
             // over full buffers only)
};

// "callbacks" or "activity": the values of MOESCOPE_GPU_CORRELATION, and the run's cupti.correlation.
const char* correlationName(Correlation correlation);
// "full", "drain" or "worker": the values of MOESCOPE_GPU_FLUSH, and the run's cupti.flush.
const char* flushName(Flush flush);

struct GpuTraceSettings {
  bool enabled = true;  // MOESCOPE_GPU_TRACE: GPU records in a traced CUDA run (off: host spans only)
  bool nvtx = true;     // MOESCOPE_GPU_NVTX: spans as NVTX ranges too
  Correlation correlation = Correlation::Callbacks;  // MOESCOPE_GPU_CORRELATION
  Flush flush = Flush::WhenFull;                     // MOESCOPE_GPU_FLUSH
  bool operator==(const GpuTraceSettings&) const = default;
};

using GpuTraceValue = EnvValue<GpuTraceSettings>;
using GpuTraceVariable = EnvVariable<GpuTraceSettings>;  // its values: the first is the default

// The table: MOESCOPE_GPU_TRACE, MOESCOPE_GPU_NVTX, MOESCOPE_GPU_CORRELATION, MOESCOPE_GPU_FLUSH.
std::span<const GpuTraceVariable> gpuTraceVariables();

// Every variable of the table through getenv (unset or empty: its default). Throws
// std::invalid_argument naming the variable, the value and the values it takes.
GpuTraceSettings readGpuTraceSettings(const std::function<const char*(const char*)>& getenv);
GpuTraceSettings readGpuTraceSettings();  // from the process's environment

// The table as help text, a line per value: "  MOESCOPE_GPU_FLUSH=drain   each drain asks ...".
std::string gpuTraceVariablesHelp();

}  // namespace moescope::tracer::gpu
