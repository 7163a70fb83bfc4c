#include "tracer/gpu_trace_options.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <stdexcept>

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
  GpuTraceSettings settings;
  for (const GpuTraceVariable& variable : kVariables) {
    const char* raw = getenv(std::string(variable.name).c_str());
    const std::string_view value = raw ? raw : "";
    if (value.empty()) continue;
    const GpuTraceValue* match = nullptr;
    std::string accepted;
    for (const GpuTraceValue& v : variable.values) {
      if (v.value == value) match = &v;
      accepted += accepted.empty() ? "" : (&v == &variable.values.back() ? " or " : ", ");
      accepted += v.value;
    }
    if (!match)
      throw std::invalid_argument(std::string(variable.name) + " must be " + accepted + ", got '" +
                                  std::string(value) + "'");
    match->apply(settings);
  }
  return settings;
}

GpuTraceSettings readGpuTraceSettings() {
  return readGpuTraceSettings([](const char* name) { return std::getenv(name); });
}

std::string gpuTraceVariablesHelp() {
  std::string help;
  for (const GpuTraceVariable& variable : kVariables) {
    for (const GpuTraceValue& v : variable.values) {
      std::string line = "  " + std::string(variable.name) + "=" + std::string(v.value);
      line.resize(std::max<size_t>(line.size() + 2, 38), ' ');
      help += line + std::string(v.meaning) + (&v == &variable.values.front() ? " (default)\n" : "\n");
    }
  }
  return help;
}

}  // namespace moescope::tracer::gpu
