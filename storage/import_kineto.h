// One PyTorch profiler (Kineto) trace read into compact columns: what the import keeps of each event
// (about 56 bytes against the 150-700 bytes of JSON it came from), the trace's header (rank, world
// size, process groups, devices, base time) and counts of everything seen, kept or not.
//
// The file is Chrome's trace-event JSON as Kineto's ChromeTraceLogger writes it (libkineto
// output_json.cpp): a top-level object with schemaVersion, deviceProperties, distributedInfo,
// baseTimeNanoseconds and traceEvents, whose complete events ("ph": "X") carry a category (cpu_op,
// user_annotation, python_function, cuda_runtime, cuda_driver, gpu_user_annotation, kernel, gpu_memcpy,
// gpu_memset, ...), ts and dur in microseconds with three decimals, and args; "s"/"f" events are the
// ac2g launch-to-kernel flows; "M" events name processes and threads. Keys may come in any order.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/import_memory.h"
#include "storage/import_names.h"

namespace moescope::storage {

class TraceInput;

enum class KinetoKind : uint8_t {
  CpuOp = 0,
  UserAnnotation,
  PythonFunction,
  CudaRuntime,
  CudaDriver,
  Other,  // a complete event of a category this importer does not know: kept on its thread
  // On GPU streams:
  GpuUserAnnotation,
  GpuSync,  // cuda_sync: a stream, event or context synchronisation
  Kernel,
  Memcpy,
  Memset,
};
inline constexpr int kKinetoKindCount = 11;
inline bool isGpuKind(KinetoKind k) {
  return k >= KinetoKind::GpuUserAnnotation;
}
inline bool isGpuRecord(KinetoKind k) {
  return k >= KinetoKind::Kernel;
}

struct KinetoTrack {
  bool gpu = false;
  int64_t pid = 0, tid = 0;  // host: process and thread; GPU: device and stream
  bool operator==(const KinetoTrack&) const = default;
};

struct KinetoEvent {
  int64_t ts = 0, dur = 0;  // nanoseconds; ts from the file's base time
  uint32_t name = 0;        // NameTable id
  uint32_t track = 0;       // index in KinetoFile::tracks
  KinetoKind kind = KinetoKind::CpuOp;
  int32_t collective = -1;  // index in KinetoFile::collectives
  int64_t correlation = 0;  // CUDA calls and GPU records; 0: none
  int64_t bytes = 0;        // memcpy and memset
  bool operator==(const KinetoEvent&) const = default;
};

// The collective fields PyTorch copies onto an NCCL kernel (and its record_param_comms op).
struct KinetoCollective {
  std::string name;   // "allreduce", "send", "all_to_all", ...
  std::string dtype;  // "Float", "BFloat16", ...
  int64_t in_nelems = -1, out_nelems = -1;
  int32_t group_size = -1;
  std::vector<int32_t> ranks;  // the process group's global ranks; empty if not written
  std::string group_name, group_desc;
  int32_t src = -1, dst = -1;  // point to point
  bool operator==(const KinetoCollective&) const = default;
};

struct KinetoFlow {
  int64_t id = 0;
  uint32_t track = 0;
  int64_t ts = 0;
  bool operator==(const KinetoFlow&) const = default;
};

struct KinetoProcessGroup {
  std::string name, desc;
  int32_t size = -1;
  std::vector<int32_t> ranks;
  bool operator==(const KinetoProcessGroup&) const = default;
};

struct KinetoDistributed {
  std::string backend;
  int32_t rank = -1, world_size = -1;
  std::vector<KinetoProcessGroup> groups;
  std::string nccl_version;
  bool operator==(const KinetoDistributed&) const = default;
};

struct KinetoDevice {
  int32_t id = -1;
  std::string name;
  int64_t memory = 0;
  int32_t sms = 0;
  bool operator==(const KinetoDevice&) const = default;
};

// Everything seen, whether kept or not: the import reports these, and tests count against them.
struct KinetoCounts {
  int64_t events = 0;  // entries of traceEvents
  std::array<int64_t, kKinetoKindCount> kept{};
  int64_t flow_starts = 0, flow_ends = 0, other_flows = 0;
  int64_t metadata = 0, instants = 0, counters = 0;
  int64_t profiler_spans = 0;      // Kineto's own "Trace" spans, left out
  int64_t unknown_phases = 0;      // events whose "ph" this importer does not read, left out
  int64_t unknown_categories = 0;  // complete events of an unknown category, kept as Other
  int64_t negative_durations = 0;  // taken as zero
  int64_t zero_durations = 0;
  int64_t without_time = 0;                         // complete events with no ts, left out
  std::vector<std::string> unknown_category_names;  // the first few, for the message
  bool operator==(const KinetoCounts&) const = default;
};

struct KinetoFile {
  std::string path;
  int64_t schema_version = -1;
  std::optional<int64_t> base_time_ns;
  std::optional<KinetoDistributed> distributed;
  std::vector<KinetoDevice> devices;
  std::string host_name;                   // "host_name" (newer Kineto), else empty
  std::map<std::string, std::string> job;  // PT_PROFILER_JOB_NAME, _VERSION, _ATTEMPT_INDEX
  std::vector<KinetoTrack> tracks;
  LargeVector<KinetoEvent> events;  // in file order
  std::vector<KinetoCollective> collectives;
  LargeVector<KinetoFlow> flow_starts, flow_ends;                   // ac2g
  std::map<int64_t, std::string> process_names;                     // pid -> name
  std::map<std::pair<int64_t, int64_t>, std::string> thread_names;  // (pid, tid) -> name
  KinetoCounts counts;
};

struct KinetoReadOptions {
  // Called every few thousand events with the file bytes consumed; may throw (ImportCancelled) to stop.
  std::function<void(uint64_t fileOffset)> progress;
  size_t window = size_t{1} << 20;  // the tokenizer's window
};

// Reads one trace. Throws ImportError for a file that is not JSON or not a Kineto trace.
KinetoFile readKinetoTrace(TraceInput& input, NameTable& names, const KinetoReadOptions& options = {});

// "[0, 1, 2]" (or "0,1,2") as ranks; Kineto writes a group's ranks as text.
std::vector<int32_t> parseRankList(std::string_view text);
// Bytes of one element of a PyTorch dtype name ("Float" 4, "BFloat16" 2, "Float8_e4m3fn" 1, ...); 0 if
// unknown.
int32_t dtypeBytes(std::string_view dtype);

}  // namespace moescope::storage
