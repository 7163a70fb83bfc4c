#include "tracer/gpu/cupti_collector.h"

#include <cuda.h>
#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "tracer/gpu/cupti_check.h"
#include "tracer/span.h"

namespace moescope::tracer::gpu {

void throwCuptiError(CUptiResult result, const char* call, const char* file, int line) {
  const char* text = nullptr;
  cuptiGetResultString(result, &text);
  throw GpuTracerError(std::string("CUPTI error: ") + (text ? text : "unknown") + " in " + call + " (" + file +
                       ":" + std::to_string(line) + ")");
}

void throwCudaError(cudaError_t result, const char* call, const char* file, int line) {
  throw GpuTracerError(std::string("CUDA error: ") + cudaGetErrorString(result) + " in " + call + " (" + file +
                       ":" + std::to_string(line) + ")");
}

namespace {

constexpr size_t kAlign = 8;
constexpr CUpti_ExternalCorrelationKind kSpanKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;

// The collector's state, shared with CUPTI's buffer callbacks (which run on CUPTI's own thread).
struct State {
  std::mutex mutex;
  size_t bufferBytes = 8 << 20;
  std::vector<GpuRecord> pending;                          // records not yet tied to a span
  std::unordered_map<uint32_t, uint64_t> spanOfCall;       // correlation id -> span id
  std::atomic<uint64_t> dropped{0};
};

State* g_state = nullptr;
std::atomic<bool> g_running{false};

// "void ns::kernel<float>(float*, int)" -> "ns::kernel<float>": short enough for a timeline row.
std::string demangledKernelName(const char* mangled) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  // Drop the parameter list: the parentheses that close the name, matched from the end.
  if (!name.empty() && name.back() == ')') {
    int depth = 0;
    for (size_t i = name.size(); i-- > 0;) {
      if (name[i] == ')') ++depth;
      if (name[i] == '(' && --depth == 0) {
        name.resize(i);
        break;
      }
    }
  }
  for (size_t at; (at = name.find("(anonymous namespace)::")) != std::string::npos;) name.erase(at, 23);
  if (name.rfind("void ", 0) == 0) name.erase(0, 5);
  return name;
}

// CUPTI keeps one name string per function while its module is loaded: demangle each once.
std::string kernelName(const char* mangled) {
  if (!mangled) return "kernel";
  thread_local std::unordered_map<const char*, std::string> cache;
  auto [it, fresh] = cache.try_emplace(mangled);
  if (fresh) it->second = demangledKernelName(mangled);
  return it->second;
}

const char* memcpyName(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "memcpy PtoP";
    default: return "memcpy";
  }
}

uint64_t CUPTIAPI steadyClock() { return static_cast<uint64_t>(nowNs()); }

void CUPTIAPI bufferRequested(uint8_t** buffer, size_t* size, size_t* maxRecords) {
  size_t bytes = g_state ? g_state->bufferBytes : (8 << 20);
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(kAlign, bytes));
  *size = *buffer ? bytes : 0;
  *maxRecords = 0;
}

void CUPTIAPI bufferCompleted(CUcontext context, uint32_t streamId, uint8_t* buffer, size_t, size_t validSize) {
  std::vector<GpuRecord> records;
  std::vector<std::pair<uint32_t, uint64_t>> calls;
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, validSize, &record) == CUPTI_SUCCESS) {
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        records.push_back({storage::GpuActivityKind::Kernel, static_cast<int64_t>(k->start),
                           static_cast<int64_t>(k->end), kernelName(k->name), static_cast<int32_t>(k->deviceId),
                           k->streamId, k->correlationId, 0, 0});
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        records.push_back({storage::GpuActivityKind::Memcpy, static_cast<int64_t>(m->start),
                           static_cast<int64_t>(m->end), memcpyName(m->copyKind),
                           static_cast<int32_t>(m->deviceId), m->streamId, m->correlationId, 0,
                           static_cast<int64_t>(m->bytes)});
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
        records.push_back({storage::GpuActivityKind::Memset, static_cast<int64_t>(m->start),
                           static_cast<int64_t>(m->end), "memset", static_cast<int32_t>(m->deviceId),
                           m->streamId, m->correlationId, 0, static_cast<int64_t>(m->bytes)});
        break;
      }
      case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
        auto* e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(record);
        if (e->externalKind == kSpanKind) calls.emplace_back(e->correlationId, e->externalId);
        break;
      }
      default:
        break;  // runtime and driver API records are enabled only so that calls get correlated
    }
  }
  size_t dropped = 0;
  if (cuptiActivityGetNumDroppedRecords(context, streamId, &dropped) == CUPTI_SUCCESS && g_state)
    g_state->dropped += dropped;
  if (g_state) {
    std::lock_guard lock(g_state->mutex);
    for (auto& r : records) g_state->pending.push_back(std::move(r));
    for (auto [call, span] : calls) g_state->spanOfCall[call] = span;
  }
  std::free(buffer);
}

constexpr CUpti_ActivityKind kCorrelationKinds[] = {
    CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_DRIVER, CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION};

}  // namespace

std::unique_ptr<CuptiCollector> CuptiCollector::start(const CollectorOptions& options) {
  bool expected = false;
  if (!g_running.compare_exchange_strong(expected, true))
    throw GpuTracerError("CUPTI collector already running in this process");
  g_state = new State;
  g_state->bufferBytes = options.bufferBytes;
  try {
    MOESCOPE_CUPTI_CHECK(cuptiActivityRegisterTimestampCallback(steadyClock));
    MOESCOPE_CUPTI_CHECK(cuptiActivityRegisterCallbacks(bufferRequested, bufferCompleted));
    MOESCOPE_CUPTI_CHECK(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL));
    if (options.memcpy) MOESCOPE_CUPTI_CHECK(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY));
    if (options.memset) MOESCOPE_CUPTI_CHECK(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET));
    for (auto kind : kCorrelationKinds) MOESCOPE_CUPTI_CHECK(cuptiActivityEnable(kind));
  } catch (...) {
    delete g_state;
    g_state = nullptr;
    g_running = false;
    throw;
  }
  return std::unique_ptr<CuptiCollector>(new CuptiCollector);
}

CuptiCollector::~CuptiCollector() {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_MEMCPY);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_MEMSET);
  for (auto kind : kCorrelationKinds) cuptiActivityDisable(kind);
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  State* state = g_state;
  g_state = nullptr;
  delete state;
  g_running = false;
}

void CuptiCollector::pushSpan(uint64_t id) { cuptiActivityPushExternalCorrelationId(kSpanKind, id); }

void CuptiCollector::popSpan() {
  uint64_t last = 0;
  cuptiActivityPopExternalCorrelationId(kSpanKind, &last);
}

std::vector<GpuRecord> CuptiCollector::drain(bool final) {
  MOESCOPE_CUPTI_CHECK(cuptiActivityFlushAll(final ? CUPTI_ACTIVITY_FLAG_FLUSH_FORCED : 0));
  std::vector<GpuRecord> ready;
  std::lock_guard lock(g_state->mutex);
  std::vector<GpuRecord> waiting;
  for (auto& r : g_state->pending) {
    auto it = g_state->spanOfCall.find(r.correlation);
    if (it != g_state->spanOfCall.end()) {
      r.span = it->second;
      g_state->spanOfCall.erase(it);  // one launch, one record
      ready.push_back(std::move(r));
    } else if (final) {
      ready.push_back(std::move(r));  // launched outside any span
    } else {
      waiting.push_back(std::move(r));
    }
  }
  g_state->pending = std::move(waiting);
  if (final) g_state->spanOfCall.clear();
  std::sort(ready.begin(), ready.end(), [](const GpuRecord& a, const GpuRecord& b) { return a.start < b.start; });
  return ready;
}

uint64_t CuptiCollector::droppedRecords() const { return g_state ? g_state->dropped.load() : 0; }

std::string arrangeNvtxInjection() {
  if (std::getenv("NVTX_INJECTION64_PATH")) return "";
  for (const char* candidate : {"/usr/local/cuda/lib64/libcupti.so", "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so",
                                "/usr/lib/x86_64-linux-gnu/libcupti.so"}) {
    std::error_code ec;
    if (std::filesystem::exists(candidate, ec)) {
      setenv("NVTX_INJECTION64_PATH", candidate, 0);
      return candidate;
    }
  }
  return "";
}

}  // namespace moescope::tracer::gpu
