// What a recorded process saw, as `moescope-cli record`'s injection library collects it: NVTX range
// events per thread as they happened (push, pop, start, end, mark, in any domain), the CUDA calls that
// launched GPU work (for launch -> kernel correlation), and the GPU's kernels, copies and memsets from
// CUPTI. Plain data, so that a shard can be written from a synthetic stream in a test exactly as from a
// live process (storage/record_shard.h). Times: CLOCK_MONOTONIC nanoseconds (steady_clock), the clock
// CUPTI is given for its GPU timestamps too.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "storage/import_names.h"
#include "storage/trace_model.h"

namespace moescope::storage {

enum class RecordEventKind : uint8_t {
  Push = 0,  // nvtxRangePush / nvtxDomainRangePushEx: opens a range on its thread and domain
  Pop,       // closes the innermost range its thread opened in its domain
  Start,     // nvtxRangeStart: opens range `id`, which any thread may end
  End,       // closes range `id`
  Mark,      // an instant
};

struct RecordEvent {
  RecordEventKind kind = RecordEventKind::Push;
  int64_t time = 0;
  int64_t thread = 0;   // OS thread id
  uint32_t name = 0;    // in RecordStream::names (Push, Start, Mark)
  uint32_t domain = 0;  // in RecordStream::domains; 0 is NVTX's default domain
  uint64_t id = 0;      // Start and End
  bool operator==(const RecordEvent&) const = default;
};

// A CUDA runtime or driver call that put work on a stream, from its entry to its exit.
struct RecordCall {
  int64_t start = 0, end = 0;
  int64_t thread = 0;
  uint32_t name = 0;         // "cudaLaunchKernel", "cuLaunchKernelEx", ...
  uint32_t correlation = 0;  // CUPTI's correlation id, shared with the work it launched
  bool operator==(const RecordCall&) const = default;
};

struct RecordGpu {
  GpuActivityKind kind = GpuActivityKind::Kernel;
  int64_t start = 0, end = 0;
  uint32_t name = 0;
  int32_t device = 0;
  int64_t stream = 0;
  uint32_t correlation = 0;
  int64_t bytes = 0;
  bool operator==(const RecordGpu&) const = default;
};

// Move only: `names` holds views into its own storage.
struct RecordStream {
  RecordStream() = default;
  RecordStream(RecordStream&&) = default;
  RecordStream& operator=(RecordStream&&) = default;
  RecordStream(const RecordStream&) = delete;
  RecordStream& operator=(const RecordStream&) = delete;

  NameTable names;                           // range, call and kernel names
  std::vector<std::string> domains{"nvtx"};  // domain id -> name; 0: NVTX's default domain
  std::vector<RecordEvent> events;           // each thread's in the order they happened
  std::vector<RecordCall> calls;
  std::vector<RecordGpu> gpu;
  std::map<int64_t, std::string> threadNames;  // named by nvtxNameOsThread, or the OS
  int64_t pid = 0;
  std::string host;
  int64_t start_ns = 0, end_ns = 0;  // the recording's extent: ranges still open at the end close at end_ns
  bool gpu_recorded = false;         // CUPTI ran in the process
  std::string gpu_note;              // why not, when it did not ("no CUDA device", a CUPTI error)
  uint64_t gpu_dropped = 0;          // records CUPTI dropped
  uint64_t events_dropped = 0;       // NVTX events the process could not keep
};

}  // namespace moescope::storage
