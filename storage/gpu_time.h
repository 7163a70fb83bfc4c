// GPU time of a run traced on GPUs: each span's GPU extent (its records, the kernels, copies and
// memsets it launched) beside its host extent, and each rank's GPU work as analysis activity, so the
// busy, bubble and overlap analyses run unchanged on GPU time. A record counts for the rank that owns
// its stream's track, with the category and step of the span that launched it; records launched
// outside any span have no category and are left out of the activity.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/activity.h"
#include "storage/trace.h"

namespace moescope::storage {

struct SpanGpuExtent {
  int64_t span = kNone;  // the span's id (row in the span table)
  int32_t track = 0;     // the span's host track
  uint32_t name = 0;
  Category category = Category::ComputeAttention;
  int32_t step = kNone;
  int64_t host_start = 0, host_end = 0;
  int64_t gpu_start = 0, gpu_end = 0;  // first record's start to last record's end
  int64_t gpu_busy_ns = 0;             // union of the records' intervals
  int32_t records = 0, kernels = 0;
  bool operator==(const SpanGpuExtent&) const = default;
};

// One entry per span that launched records (Trace::linked), sorted by span id.
std::vector<SpanGpuExtent> gpuExtents(const Trace& trace);
// The extent of span `id` in gpuExtents' result; nullptr if it launched nothing.
const SpanGpuExtent* findGpuExtent(const std::vector<SpanGpuExtent>& extents, int64_t id);

// The GPU records tied to a span, grouped by the rank that owns their stream, ranks ascending.
std::vector<RankActivity> gpuActivity(const Trace& trace);

struct GpuRecordCounts {
  int64_t records = 0;      // in the trace
  int64_t unlinked = 0;     // without a span
  int64_t dropped = kNone;  // CUPTI's dropped records (run meta "cupti.dropped_records"), kNone if absent
  bool operator==(const GpuRecordCounts&) const = default;
};
GpuRecordCounts gpuRecordCounts(const Trace& trace);

// The GPU records summed by name (each kernel, "memcpy HtoD", "memset", ...), the largest total time
// first, ties by name: a profiler's kernel summary. Every record counts, with a span or without.
struct KernelTotal {
  std::string name;
  GpuActivityKind kind = GpuActivityKind::Kernel;
  int64_t count = 0;
  int64_t total_ns = 0, min_ns = 0, max_ns = 0;
  double share = 0;  // of the total time of all records
  bool operator==(const KernelTotal&) const = default;
};
std::vector<KernelTotal> kernelTotals(const Trace& trace);

}  // namespace moescope::storage
