#include "tracer/gpu_trace_options.h"

#include <array>
#include <cstdlib>

namespace moescope::tracer::gpu {
namespace {

constexpr std::array kTrace{
    GpuTraceValue{"1", "GPU records (CUPTI) beside the host spans",
                  [](GpuTraceSettings& s) { s.enabled = true; }},
    GpuTraceValue{"0", "host spans only", [](GpuTraceSettings& s) { s.enabled = false; }},
};
constexpr std::array kNvtx{
    GpuTraceValue{"1", "spans as NVTX ranges, NVTX injected into CUPTI",
                  [](GpuTraceSettings& s) { s.nvtx = true; }},
    GpuTraceValue{"0", "no NVTX ranges", [](GpuTraceSettings& s) { s.nvtx = false; }},
};
constexpr std::array kCorrelation{
    GpuTraceValue{"callbacks", "CUPTI callbacks on the launching calls tie records to spans",
                  [](GpuTraceSettings& s) { s.correlation = Correlation::Callbacks; }},
    GpuTraceValue{"activity", "external correlation ids, with API records for every call",
                  [](GpuTraceSettings& s) { s.correlation = Correlation::ActivityRecords; }},
};
constexpr std::array kFlush{
    GpuTraceValue{"full", "CUPTI hands a buffer over when it is full",
                  [](GpuTraceSettings& s) { s.flush = Flush::WhenFull; }},
    GpuTraceValue{"drain", "each drain asks CUPTI for its completed buffers",
                  [](GpuTraceSettings& s) { s.flush = Flush::OnDrain; }},
    GpuTraceValue{"worker", "CUPTI's worker thread wakes periodically",
                  [](GpuTraceSettings& s) { s.flush = Flush::Worker; }},
};
constexpr std::array kVariables{
    GpuTraceVariable{"MOESCOPE_GPU_TRACE", kTrace},
    GpuTraceVariable{"MOESCOPE_GPU_NVTX", kNvtx},
    GpuTraceVariable{"MOESCOPE_GPU_CORRELATION", kCorrelation},
    GpuTraceVariable{"MOESCOPE_GPU_FLUSH", kFlush},
};

}  // namespace

const char* correlationName(Correlation correlation) {
  return correlation == Correlation::ActivityRecords ? "activity" : "callbacks";
}

const char* flushName(Flush flush) {
  switch (flush) {
    case Flush::Worker:
      return "worker";
    case Flush::OnDrain:
      return "drain";
    case Flush::WhenFull:
      break;
  }
  return "full";
}

std::span<const GpuTraceVariable> gpuTraceVariables() {
  return kVariables;
}

GpuTraceSettings readGpuTraceSettings(const std::function<const char*(const char*)>& getenv) {
  return readEnvSwitches<GpuTraceSettings>(kVariables, getenv);
}

GpuTraceSettings readGpuTraceSettings() {
  return readGpuTraceSettings([](const char* name) { return std::getenv(name); });
}

std::string gpuTraceVariablesHelp() {
  return envSwitchesHelp<GpuTraceSettings>(kVariables);
}

}  // namespace moescope::tracer::gpu
