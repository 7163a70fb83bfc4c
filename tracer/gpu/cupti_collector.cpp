#include "tracer/gpu/cupti_collector.h"

#include <cuda.h>
#include <cupti.h>
#include <cxxabi.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "tracer/gpu/cupti_check.h"
#include "tracer/span.h"

namespace moescope::tracer::gpu {

void throwCuptiError(CUptiResult result, const char* call, const char* file, int line) {
  const char* text = nullptr;
  cuptiGetResultString(result, &text);
  throw GpuTracerError(std::string("CUPTI error: ") + (text ? text : "unknown") + " in " + call + " (" +
                       file + ":" + std::to_string(line) + ")");
}

void throwCudaError(cudaError_t result, const char* call, const char* file, int line) {
  throw GpuTracerError(std::string("CUDA error: ") + cudaGetErrorString(result) + " in " + call + " (" +
                       file + ":" + std::to_string(line) + ")");
}

namespace {

constexpr size_t kAlign = 8;
constexpr CUpti_ExternalCorrelationKind kSpanKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;

// The calls whose entry the Callbacks correlation watches: every runtime and driver entry point that
// puts a kernel, memcpy, memset or graph on a stream, with their per-thread-stream variants (_ptds,
// _ptsz). `kernel<<<...>>>` goes through __cudaLaunchKernel since CUDA 13 (cudaLaunchKernel before);
// cuBLASLt and NCCL launch through the driver (cuLaunchKernel, cuLaunchKernelEx). A runtime call that
// CUPTI also reports as a nested driver call is noted twice with the same span, which is harmless.
struct Watched {
  CUpti_CallbackDomain domain;
  CUpti_CallbackId cbid;
};

#define MOESCOPE_RT(name) \
  { CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_##name }
#define MOESCOPE_DRV(name) \
  { CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_##name }
constexpr Watched kLaunchCalls[] = {
    // Runtime: kernels.
    MOESCOPE_RT(cudaLaunchKernel_v7000),
    MOESCOPE_RT(cudaLaunchKernel_ptsz_v7000),
    MOESCOPE_RT(cudaLaunchKernelExC_v11060),
    MOESCOPE_RT(cudaLaunchKernelExC_ptsz_v11060),
    MOESCOPE_RT(cudaLaunchCooperativeKernel_v9000),
    MOESCOPE_RT(cudaLaunchCooperativeKernel_ptsz_v9000),
#if CUPTI_API_VERSION >= 130000
    MOESCOPE_RT(__cudaLaunchKernel_v13000),
    MOESCOPE_RT(__cudaLaunchKernel_ptsz_v13000),
#endif
    MOESCOPE_RT(cudaGraphLaunch_v10000),
    MOESCOPE_RT(cudaGraphLaunch_ptsz_v10000),
    // Runtime: memcpy.
    MOESCOPE_RT(cudaMemcpy_v3020),
    MOESCOPE_RT(cudaMemcpy_ptds_v7000),
    MOESCOPE_RT(cudaMemcpyAsync_v3020),
    MOESCOPE_RT(cudaMemcpyAsync_ptsz_v7000),
    MOESCOPE_RT(cudaMemcpy2D_v3020),
    MOESCOPE_RT(cudaMemcpy2D_ptds_v7000),
    MOESCOPE_RT(cudaMemcpy2DAsync_v3020),
    MOESCOPE_RT(cudaMemcpy2DAsync_ptsz_v7000),
    MOESCOPE_RT(cudaMemcpy3D_v3020),
    MOESCOPE_RT(cudaMemcpy3D_ptds_v7000),
    MOESCOPE_RT(cudaMemcpy3DAsync_v3020),
    MOESCOPE_RT(cudaMemcpy3DAsync_ptsz_v7000),
    MOESCOPE_RT(cudaMemcpyToSymbol_v3020),
    MOESCOPE_RT(cudaMemcpyToSymbol_ptds_v7000),
    MOESCOPE_RT(cudaMemcpyToSymbolAsync_v3020),
    MOESCOPE_RT(cudaMemcpyToSymbolAsync_ptsz_v7000),
    MOESCOPE_RT(cudaMemcpyFromSymbol_v3020),
    MOESCOPE_RT(cudaMemcpyFromSymbol_ptds_v7000),
    MOESCOPE_RT(cudaMemcpyFromSymbolAsync_v3020),
    MOESCOPE_RT(cudaMemcpyFromSymbolAsync_ptsz_v7000),
    MOESCOPE_RT(cudaMemcpyPeer_v4000),
    MOESCOPE_RT(cudaMemcpyPeerAsync_v4000),
    MOESCOPE_RT(cudaMemcpy3DPeer_v4000),
    MOESCOPE_RT(cudaMemcpy3DPeer_ptds_v7000),
    MOESCOPE_RT(cudaMemcpy3DPeerAsync_v4000),
    MOESCOPE_RT(cudaMemcpy3DPeerAsync_ptsz_v7000),
    // Runtime: memset.
    MOESCOPE_RT(cudaMemset_v3020),
    MOESCOPE_RT(cudaMemset_ptds_v7000),
    MOESCOPE_RT(cudaMemsetAsync_v3020),
    MOESCOPE_RT(cudaMemsetAsync_ptsz_v7000),
    MOESCOPE_RT(cudaMemset2D_v3020),
    MOESCOPE_RT(cudaMemset2D_ptds_v7000),
    MOESCOPE_RT(cudaMemset2DAsync_v3020),
    MOESCOPE_RT(cudaMemset2DAsync_ptsz_v7000),
    MOESCOPE_RT(cudaMemset3D_v3020),
    MOESCOPE_RT(cudaMemset3D_ptds_v7000),
    MOESCOPE_RT(cudaMemset3DAsync_v3020),
    MOESCOPE_RT(cudaMemset3DAsync_ptsz_v7000),
    // Driver: kernels and graphs.
    MOESCOPE_DRV(cuLaunchKernel),
    MOESCOPE_DRV(cuLaunchKernel_ptsz),
    MOESCOPE_DRV(cuLaunchKernelEx),
    MOESCOPE_DRV(cuLaunchKernelEx_ptsz),
    MOESCOPE_DRV(cuLaunchCooperativeKernel),
    MOESCOPE_DRV(cuLaunchCooperativeKernel_ptsz),
    MOESCOPE_DRV(cuGraphLaunch),
    MOESCOPE_DRV(cuGraphLaunch_ptsz),
    // Driver: memcpy.
    MOESCOPE_DRV(cuMemcpy),
    MOESCOPE_DRV(cuMemcpy_ptds),
    MOESCOPE_DRV(cuMemcpyAsync),
    MOESCOPE_DRV(cuMemcpyAsync_ptsz),
    MOESCOPE_DRV(cuMemcpyHtoD_v2),
    MOESCOPE_DRV(cuMemcpyHtoD_v2_ptds),
    MOESCOPE_DRV(cuMemcpyDtoH_v2),
    MOESCOPE_DRV(cuMemcpyDtoH_v2_ptds),
    MOESCOPE_DRV(cuMemcpyDtoD_v2),
    MOESCOPE_DRV(cuMemcpyDtoD_v2_ptds),
    MOESCOPE_DRV(cuMemcpyHtoDAsync_v2),
    MOESCOPE_DRV(cuMemcpyHtoDAsync_v2_ptsz),
    MOESCOPE_DRV(cuMemcpyDtoHAsync_v2),
    MOESCOPE_DRV(cuMemcpyDtoHAsync_v2_ptsz),
    MOESCOPE_DRV(cuMemcpyDtoDAsync_v2),
    MOESCOPE_DRV(cuMemcpyDtoDAsync_v2_ptsz),
    MOESCOPE_DRV(cuMemcpy2D_v2),
    MOESCOPE_DRV(cuMemcpy2D_v2_ptds),
    MOESCOPE_DRV(cuMemcpy2DUnaligned_v2),
    MOESCOPE_DRV(cuMemcpy2DUnaligned_v2_ptds),
    MOESCOPE_DRV(cuMemcpy2DAsync_v2),
    MOESCOPE_DRV(cuMemcpy2DAsync_v2_ptsz),
    MOESCOPE_DRV(cuMemcpy3D_v2),
    MOESCOPE_DRV(cuMemcpy3D_v2_ptds),
    MOESCOPE_DRV(cuMemcpy3DAsync_v2),
    MOESCOPE_DRV(cuMemcpy3DAsync_v2_ptsz),
    MOESCOPE_DRV(cuMemcpyPeer),
    MOESCOPE_DRV(cuMemcpyPeer_ptds),
    MOESCOPE_DRV(cuMemcpyPeerAsync),
    MOESCOPE_DRV(cuMemcpyPeerAsync_ptsz),
    MOESCOPE_DRV(cuMemcpy3DPeer),
    MOESCOPE_DRV(cuMemcpy3DPeer_ptds),
    MOESCOPE_DRV(cuMemcpy3DPeerAsync),
    MOESCOPE_DRV(cuMemcpy3DPeerAsync_ptsz),
    // Driver: memset.
    MOESCOPE_DRV(cuMemsetD8_v2),
    MOESCOPE_DRV(cuMemsetD8_v2_ptds),
    MOESCOPE_DRV(cuMemsetD16_v2),
    MOESCOPE_DRV(cuMemsetD16_v2_ptds),
    MOESCOPE_DRV(cuMemsetD32_v2),
    MOESCOPE_DRV(cuMemsetD32_v2_ptds),
    MOESCOPE_DRV(cuMemsetD2D8_v2),
    MOESCOPE_DRV(cuMemsetD2D8_v2_ptds),
    MOESCOPE_DRV(cuMemsetD2D16_v2),
    MOESCOPE_DRV(cuMemsetD2D16_v2_ptds),
    MOESCOPE_DRV(cuMemsetD2D32_v2),
    MOESCOPE_DRV(cuMemsetD2D32_v2_ptds),
    MOESCOPE_DRV(cuMemsetD8Async),
    MOESCOPE_DRV(cuMemsetD8Async_ptsz),
    MOESCOPE_DRV(cuMemsetD16Async),
    MOESCOPE_DRV(cuMemsetD16Async_ptsz),
    MOESCOPE_DRV(cuMemsetD32Async),
    MOESCOPE_DRV(cuMemsetD32Async_ptsz),
    MOESCOPE_DRV(cuMemsetD2D8Async),
    MOESCOPE_DRV(cuMemsetD2D8Async_ptsz),
    MOESCOPE_DRV(cuMemsetD2D16Async),
    MOESCOPE_DRV(cuMemsetD2D16Async_ptsz),
    MOESCOPE_DRV(cuMemsetD2D32Async),
    MOESCOPE_DRV(cuMemsetD2D32Async_ptsz),
};
#undef MOESCOPE_RT
#undef MOESCOPE_DRV

// The watched calls by (domain, callback id), with their names for LaunchCall: CUPTI's, less a runtime
// call's version suffix ("cudaLaunchKernel_ptsz_v7000" -> "cudaLaunchKernel_ptsz"), as a callback's
// functionName gives them. Built once and never freed: a LaunchCall's name is static.
class WatchedNames {
 public:
  static const WatchedNames& get() {
    static const WatchedNames* names = new WatchedNames;
    return *names;
  }
  // The name of a watched call, or nullptr when the call is not one of kLaunchCalls.
  const char* find(CUpti_CallbackDomain domain, CUpti_CallbackId cbid) const {
    const auto it = names_.find({domain, cbid});
    return it == names_.end() ? nullptr : it->second.c_str();
  }

 private:
  WatchedNames() {
    for (const Watched& w : kLaunchCalls) {
      const char* cupti = nullptr;
      std::string name =
          cuptiGetCallbackName(w.domain, w.cbid, &cupti) == CUPTI_SUCCESS && cupti ? cupti : "";
      if (name.empty()) name = w.domain == CUPTI_CB_DOMAIN_RUNTIME_API ? "cudaLaunch" : "cuLaunch";
      const size_t at = name.rfind("_v");
      if (at != std::string::npos && name.size() - at >= 6 &&
          name.find_first_not_of("0123456789", at + 2) == std::string::npos)
        name.resize(at);
      names_.emplace(std::pair{w.domain, w.cbid}, std::move(name));
    }
  }
  std::map<std::pair<CUpti_CallbackDomain, CUpti_CallbackId>, std::string> names_;
};

// The activity kinds that ActivityRecords needs besides the work records.
constexpr CUpti_ActivityKind kCorrelationKinds[] = {CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_DRIVER,
                                                    CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION};

// The calling thread's open spans, innermost last. Plain thread_local data (no constructor, no
// destructor), so that reading it from a CUPTI callback costs a TLS access and nothing else. Spans nest
// a handful deep; beyond kMaxDepth the deepest kept span stands for the deeper ones.
constexpr int kMaxDepth = 64;
thread_local uint64_t t_spans[kMaxDepth];
thread_local int t_depth = 0;

uint64_t innermostSpan() {
  return t_depth == 0 ? 0 : t_spans[std::min(t_depth, kMaxDepth) - 1];
}

// One thread's (correlation id, span) notes since the last drain. Why a log per thread rather than a
// lock-free ring indexed by correlation id: CUPTI may give a correlation id to every API call, the
// communicators' cudaStreamQuery spin-polls included, while a record can reach a drain hundreds of
// milliseconds after its launch; a ring would have to be sized for the spin-poll rate times that delay,
// neither of which is known here, and would give a record span 0 without a word when overrun. The log's mutex
// is taken by its thread at each watched call and by the drain every drainPeriod, so it is practically never
// contended and costs an uncontended lock on a cache line the thread already owns, small beside CUPTI's own
// cost of entering a callback. Logs live as long as the collector (a thread that ends leaves an empty log).
struct alignas(64) CallLog {
  std::mutex mutex;
  std::vector<std::pair<uint32_t, uint64_t>> calls;
  std::vector<LaunchCall> launches;  // CollectorOptions::launchCalls
  int64_t thread = 0;
};

// Correlation id -> span, in two generations. The current one takes new entries; once it holds
// kGenerationEntries it becomes the previous one and the previous one is dropped, so an entry is kept
// until between one and two generations of watched calls came after it, whether it matched or not (a
// graph launch's kernels all carry its call's id; a call can produce no record). Counting calls rather
// than time keeps every entry until its record can have arrived: CUPTI hands a buffer over when it is
// full, and a buffer holds far fewer records than a generation has calls (tens of thousands against
// kGenerationEntries), however slowly the run goes. The table holds two generations at most.
class SpanOfCall {
 public:
  static constexpr size_t kGenerationEntries = size_t{1} << 18;

  void add(uint32_t call, uint64_t span) { current_[call] = span; }
  // The span of a call seen, or nullptr.
  const uint64_t* find(uint32_t call) const {
    if (auto it = current_.find(call); it != current_.end()) return &it->second;
    if (auto it = previous_.find(call); it != previous_.end()) return &it->second;
    return nullptr;
  }
  // After a drain: starts a new generation when the current one is full.
  void age() {
    if (current_.size() < kGenerationEntries) return;
    std::swap(previous_, current_);
    current_.clear();
    ++generation_;
  }
  void clear() {
    current_.clear();
    previous_.clear();
  }
  uint64_t generation() const { return generation_; }

 private:
  std::unordered_map<uint32_t, uint64_t> current_, previous_;
  uint64_t generation_ = 0;
};

struct Pending {
  GpuRecord record;
  uint64_t generation = 0;  // SpanOfCall's generation when the record arrived
};

// The collector's state, shared with CUPTI's buffer callbacks (which run on CUPTI's own thread or in a
// flush) and API callbacks (on the launching threads).
struct State {
  ~State() {
    for (uint8_t* buffer : pool) std::free(buffer);
  }

  size_t bufferBytes = 8 << 20;
  bool spans = true;
  Correlation correlation = Correlation::Callbacks;
  Flush flush = Flush::WhenFull;
  LaunchCalls launchCalls = LaunchCalls::Off;
  uint64_t epoch = 0;  // tells this collector's thread logs from an earlier collector's
  CUpti_SubscriberHandle subscriber = nullptr;
  bool buffersRegistered = false;
  std::vector<CUpti_ActivityKind> enabledKinds;  // to disable exactly these (another tool may own the rest)
  std::vector<Watched> enabledApis;              // LaunchCalls::Activity: the API records enabled one by one
  bool threadIdTypeSet = false;                  // LaunchCalls::Activity: set to the OS thread id, restored
  CUpti_ActivityThreadIdType previousThreadIdType = CUPTI_ACTIVITY_THREAD_ID_TYPE_DEFAULT;

  // Buffers CUPTI handed back, kept for its next requests (kPoolBuffers at most).
  std::mutex poolMutex;
  std::vector<uint8_t*> pool;

  // Written by bufferCompleted, taken by drain and drainLaunchCalls.
  std::mutex arrivedMutex;
  std::vector<GpuRecord> arrived;
  std::vector<std::pair<uint32_t, uint64_t>> externalIds;  // ActivityRecords: correlation id -> span
  std::vector<LaunchCall> arrivedLaunches;                 // LaunchCalls::Activity

  // Callbacks: the launching threads' logs.
  std::mutex logsMutex;
  std::vector<std::unique_ptr<CallLog>> logs;

  // drain's own.
  std::mutex drainMutex;
  SpanOfCall spanOfCall;
  std::vector<Pending> waiting;  // ActivityRecords: records whose call is not known yet

  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> unmatched{0};
};

State* g_state = nullptr;
std::atomic<bool> g_running{false};
std::atomic<uint64_t> g_epoch{0};
// pushSpan/popSpan push external correlation ids too (ActivityRecords).
std::atomic<bool> g_pushExternalIds{false};

thread_local CallLog* t_log = nullptr;
thread_local uint64_t t_logEpoch = 0;

CallLog& threadLog(State& state) {
  if (t_logEpoch != state.epoch) {
    auto log = std::make_unique<CallLog>();
    log->thread = static_cast<int64_t>(::gettid());
    std::lock_guard lock(state.logsMutex);
    t_log = state.logs.emplace_back(std::move(log)).get();
    t_logEpoch = state.epoch;
  }
  return *t_log;
}

// At the entry of a watched call: note which span (0 outside any) the calling thread launches in.
// Calls outside spans are noted too, so that a record no note explains is counted (unmatchedRecords).
// With LaunchCalls::Callbacks, the call's entry and exit times too (the exit finds its entry at the log's
// end: a launch call nests no other watched call of its thread but the driver call a runtime call makes).
void CUPTIAPI onLaunchCall(void* userdata, CUpti_CallbackDomain, CUpti_CallbackId, const void* data) {
  const auto* info = static_cast<const CUpti_CallbackData*>(data);
  State& state = *static_cast<State*>(userdata);
  const bool keepCall = state.launchCalls == LaunchCalls::Callbacks;
  if (info->callbackSite != CUPTI_API_ENTER) {
    if (!keepCall) return;
    const int64_t now = nowNs();
    CallLog& log = threadLog(state);
    std::lock_guard lock(log.mutex);
    for (auto it = log.launches.rbegin(); it != log.launches.rend(); ++it) {
      if (it->correlation == info->correlationId) {
        it->end = now;
        break;
      }
    }
    return;
  }
  CallLog& log = threadLog(state);
  std::lock_guard lock(log.mutex);
  if (state.spans) log.calls.emplace_back(info->correlationId, innermostSpan());
  if (keepCall) {
    const int64_t now = nowNs();
    log.launches.push_back({info->correlationId, now, now, log.thread, info->functionName});
  }
}

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
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
      return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
      return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
      return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP:
      return "memcpy PtoP";
    default:
      return "memcpy";
  }
}

uint64_t CUPTIAPI steadyClock() {
  return static_cast<uint64_t>(nowNs());
}

// Buffers kept for reuse: CUPTI keeps one buffer a launching thread (per-thread activity buffers) and
// asks on that thread for the next one when it is full; a reused buffer's pages are already mapped.
constexpr size_t kPoolBuffers = 4;

void CUPTIAPI bufferRequested(uint8_t** buffer, size_t* size, size_t* maxRecords) {
  State* state = g_state;
  const size_t bytes = state ? state->bufferBytes : (8 << 20);
  *buffer = nullptr;
  if (state) {
    std::lock_guard lock(state->poolMutex);
    if (!state->pool.empty()) {
      *buffer = state->pool.back();
      state->pool.pop_back();
    }
  }
  if (!*buffer) *buffer = static_cast<uint8_t*>(std::aligned_alloc(kAlign, bytes));
  *size = *buffer ? bytes : 0;
  *maxRecords = 0;
}

void giveBack(uint8_t* buffer, size_t size) {
  State* state = g_state;
  if (state && size == state->bufferBytes) {
    std::lock_guard lock(state->poolMutex);
    if (state->pool.size() < kPoolBuffers) {
      state->pool.push_back(buffer);
      return;
    }
  }
  std::free(buffer);
}

void CUPTIAPI bufferCompleted(CUcontext context, uint32_t streamId, uint8_t* buffer, size_t size,
                              size_t validSize) {
  std::vector<GpuRecord> records;
  std::vector<std::pair<uint32_t, uint64_t>> calls;
  std::vector<LaunchCall> launches;
  const bool keepApiRecords = g_state && g_state->launchCalls == LaunchCalls::Activity;
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, validSize, &record) == CUPTI_SUCCESS) {
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        GpuRecord r{storage::GpuActivityKind::Kernel,
                    static_cast<int64_t>(k->start),
                    static_cast<int64_t>(k->end),
                    kernelName(k->name),
                    static_cast<int32_t>(k->deviceId),
                    k->streamId,
                    k->correlationId,
                    0,
                    0};
        r.launch = {k->gridX,
                    k->gridY,
                    k->gridZ,
                    k->blockX,
                    k->blockY,
                    k->blockZ,
                    k->registersPerThread,
                    k->staticSharedMemory,
                    k->dynamicSharedMemory};
        records.push_back(std::move(r));
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
      case CUPTI_ACTIVITY_KIND_RUNTIME:
      case CUPTI_ACTIVITY_KIND_DRIVER: {
        // LaunchCalls::Activity: the watched calls' records. ActivityRecords enables every call's record
        // (for correlation only): the watched ones are picked out by their callback id.
        if (!keepApiRecords) break;
        auto* a = reinterpret_cast<const CUpti_ActivityAPI*>(record);
        const auto domain = record->kind == CUPTI_ACTIVITY_KIND_RUNTIME ? CUPTI_CB_DOMAIN_RUNTIME_API
                                                                        : CUPTI_CB_DOMAIN_DRIVER_API;
        if (const char* name = WatchedNames::get().find(domain, a->cbid))
          launches.push_back({a->correlationId, static_cast<int64_t>(a->start), static_cast<int64_t>(a->end),
                              static_cast<int64_t>(a->threadId), name});
        break;
      }
      default:
        break;
    }
  }
  size_t dropped = 0;
  if (cuptiActivityGetNumDroppedRecords(context, streamId, &dropped) == CUPTI_SUCCESS && g_state)
    g_state->dropped += dropped;
  if (g_state) {
    std::lock_guard lock(g_state->arrivedMutex);
    for (auto& r : records) g_state->arrived.push_back(std::move(r));
    g_state->externalIds.insert(g_state->externalIds.end(), calls.begin(), calls.end());
    g_state->arrivedLaunches.insert(g_state->arrivedLaunches.end(), launches.begin(), launches.end());
  }
  giveBack(buffer, size);
}

CUptiResult enableApiRecords(const Watched& w, uint8_t enable) {
  return w.domain == CUPTI_CB_DOMAIN_RUNTIME_API ? cuptiActivityEnableRuntimeApi(w.cbid, enable)
                                                 : cuptiActivityEnableDriverApi(w.cbid, enable);
}

// Best effort, for a failed start and for the destructor: what start turned on, off again, and the
// records still in CUPTI's buffers handed over (to be dropped with the state).
void stopCupti(State& state) {
  if (state.subscriber) {
    cuptiEnableDomain(0, state.subscriber, CUPTI_CB_DOMAIN_RUNTIME_API);
    cuptiEnableDomain(0, state.subscriber, CUPTI_CB_DOMAIN_DRIVER_API);
    cuptiUnsubscribe(state.subscriber);
    state.subscriber = nullptr;
  }
  g_pushExternalIds = false;
  if (state.flush == Flush::Worker) cuptiActivityFlushPeriod(0);
  if (state.buffersRegistered) cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  for (const Watched& w : state.enabledApis) enableApiRecords(w, 0);
  state.enabledApis.clear();
  for (auto kind : state.enabledKinds) cuptiActivityDisable(kind);
  state.enabledKinds.clear();
  if (state.buffersRegistered) cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  if (state.threadIdTypeSet) cuptiSetThreadIdType(state.previousThreadIdType);
  state.threadIdTypeSet = false;
}

void enableKind(State& state, CUpti_ActivityKind kind) {
  MOESCOPE_CUPTI_CHECK(cuptiActivityEnable(kind));
  state.enabledKinds.push_back(kind);
}

}  // namespace

std::unique_ptr<CuptiCollector> CuptiCollector::start(const CollectorOptions& options) {
  bool expected = false;
  if (!g_running.compare_exchange_strong(expected, true))
    throw GpuTracerError("CUPTI collector already running in this process");
  g_state = new State;
  g_state->bufferBytes = options.bufferBytes;
  g_state->spans = options.spans;
  g_state->correlation = options.correlation;
  g_state->flush = options.flush;
  g_state->launchCalls = options.launchCalls;
  g_state->epoch = ++g_epoch;
  const bool spanCallbacks = options.spans && options.correlation == Correlation::Callbacks;
  const bool spanRecords = options.spans && options.correlation == Correlation::ActivityRecords;
  try {
    if (spanCallbacks || options.launchCalls == LaunchCalls::Callbacks) {
      // Subscribe first: it fails at once where another CUPTI tool (Nsight Systems) owns CUPTI.
      MOESCOPE_CUPTI_CHECK(cuptiSubscribe(&g_state->subscriber, onLaunchCall, g_state));
      for (const Watched& w : kLaunchCalls)
        MOESCOPE_CUPTI_CHECK(cuptiEnableCallback(1, g_state->subscriber, w.domain, w.cbid));
    }
    if (options.launchCalls == LaunchCalls::Activity) {
      // API records carry the OS thread id (gettid, as the NVTX events' threads), not pthread_self.
      cuptiGetThreadIdType(&g_state->previousThreadIdType);
      MOESCOPE_CUPTI_CHECK(cuptiSetThreadIdType(CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM));
      g_state->threadIdTypeSet = true;
      WatchedNames::get();  // before the first record arrives
    }
    MOESCOPE_CUPTI_CHECK(cuptiActivityRegisterTimestampCallback(steadyClock));
    MOESCOPE_CUPTI_CHECK(cuptiActivityRegisterCallbacks(bufferRequested, bufferCompleted));
    g_state->buffersRegistered = true;
    if (options.flush == Flush::Worker) MOESCOPE_CUPTI_CHECK(cuptiActivityFlushPeriod(options.flushPeriodMs));
    enableKind(*g_state, CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    if (options.memcpy) enableKind(*g_state, CUPTI_ACTIVITY_KIND_MEMCPY);
    if (options.memset) enableKind(*g_state, CUPTI_ACTIVITY_KIND_MEMSET);
    if (spanRecords) {
      for (auto kind : kCorrelationKinds) enableKind(*g_state, kind);
      g_pushExternalIds = true;
    } else if (options.launchCalls == LaunchCalls::Activity) {
      // The watched calls' records only: every other call (the communicators' cudaStreamQuery spin-polls,
      // events, allocations) costs nothing.
      for (const Watched& w : kLaunchCalls) {
        if (const CUptiResult result = enableApiRecords(w, 1); result != CUPTI_SUCCESS) {
          const char* text = nullptr;
          cuptiGetResultString(result, &text);
          throw LaunchCallRecordsRefused(std::string("CUPTI refused the activity records of ") +
                                         WatchedNames::get().find(w.domain, w.cbid) + ": " +
                                         (text ? text : "unknown error"));
        }
        g_state->enabledApis.push_back(w);
      }
    }
  } catch (...) {
    stopCupti(*g_state);
    delete g_state;
    g_state = nullptr;
    g_running = false;
    throw;
  }
  return std::unique_ptr<CuptiCollector>(new CuptiCollector);
}

CuptiCollector::~CuptiCollector() {
  State* state = g_state;
  stopCupti(*state);
  g_state = nullptr;
  delete state;
  g_running = false;
}

void CuptiCollector::pushSpan(uint64_t id) {
  if (t_depth < kMaxDepth) t_spans[t_depth] = id;
  ++t_depth;
  if (g_pushExternalIds.load(std::memory_order_relaxed))
    cuptiActivityPushExternalCorrelationId(kSpanKind, id);
}

void CuptiCollector::popSpan() {
  if (t_depth > 0) --t_depth;
  if (g_pushExternalIds.load(std::memory_order_relaxed)) {
    uint64_t last = 0;
    cuptiActivityPopExternalCorrelationId(kSpanKind, &last);
  }
}

std::vector<GpuRecord> CuptiCollector::drain(bool final) {
  if (final) {
    MOESCOPE_CUPTI_CHECK(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED));
  } else if (g_state->flush == Flush::OnDrain) {
    MOESCOPE_CUPTI_CHECK(cuptiActivityFlushAll(0));
  }
  State& s = *g_state;
  std::lock_guard drainLock(s.drainMutex);
  // The records first, then the notes: a record's call entered its callback before the record existed,
  // so every record taken here has its note in the logs read after.
  std::vector<GpuRecord> arrived;
  std::vector<std::pair<uint32_t, uint64_t>> externalIds;
  {
    std::lock_guard lock(s.arrivedMutex);
    arrived.swap(s.arrived);
    externalIds.swap(s.externalIds);
  }
  if (!s.spans) {
    // Nothing to tie: every record goes out with span 0.
  } else if (s.correlation == Correlation::Callbacks) {
    std::vector<std::pair<uint32_t, uint64_t>> calls;
    std::lock_guard logsLock(s.logsMutex);
    for (auto& log : s.logs) {
      {
        std::lock_guard lock(log->mutex);
        calls.swap(log->calls);
      }
      for (auto [call, span] : calls) s.spanOfCall.add(call, span);
      calls.clear();
    }
  } else {
    for (auto [call, span] : externalIds) s.spanOfCall.add(call, span);
  }

  std::vector<GpuRecord> ready;
  std::vector<Pending> waiting;
  auto place = [&](GpuRecord&& r, uint64_t generation) {
    if (!s.spans) {
      ready.push_back(std::move(r));
    } else if (const uint64_t* span = s.spanOfCall.find(r.correlation)) {
      r.span = *span;
      ready.push_back(std::move(r));
    } else if (s.correlation == Correlation::Callbacks) {
      if (r.correlation != 0) ++s.unmatched;  // 0: work no API call launched
      ready.push_back(std::move(r));
    } else if (final || s.spanOfCall.generation() >= generation + 2) {
      ready.push_back(std::move(r));  // launched outside any span, or its call's entry is gone
    } else {
      waiting.push_back({std::move(r), generation});
    }
  };
  for (auto& p : s.waiting) place(std::move(p.record), p.generation);
  for (auto& r : arrived) place(std::move(r), s.spanOfCall.generation());
  s.waiting = std::move(waiting);
  if (final) {
    s.spanOfCall.clear();
  } else {
    s.spanOfCall.age();
  }
  std::sort(ready.begin(), ready.end(),
            [](const GpuRecord& a, const GpuRecord& b) { return a.start < b.start; });
  return ready;
}

std::vector<LaunchCall> CuptiCollector::drainLaunchCalls() {
  std::vector<LaunchCall> out;
  if (!g_state) return out;
  {
    std::lock_guard lock(g_state->arrivedMutex);
    out.swap(g_state->arrivedLaunches);
  }
  std::lock_guard logsLock(g_state->logsMutex);
  for (auto& log : g_state->logs) {
    std::lock_guard lock(log->mutex);
    // A call still inside (entered, not exited) goes out ending at its entry.
    out.insert(out.end(), log->launches.begin(), log->launches.end());
    log->launches.clear();
  }
  return out;
}

uint64_t CuptiCollector::droppedRecords() const {
  return g_state ? g_state->dropped.load() : 0;
}

uint64_t CuptiCollector::unmatchedRecords() const {
  return g_state ? g_state->unmatched.load() : 0;
}

Correlation CuptiCollector::correlation() const {
  return g_state ? g_state->correlation : Correlation::Callbacks;
}

std::string arrangeNvtxInjection() {
  if (std::getenv("NVTX_INJECTION64_PATH")) return "";
  for (const char* candidate :
       {"/usr/local/cuda/lib64/libcupti.so", "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so",
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
