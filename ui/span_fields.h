// A span's fields as labelled text, gathered from the track's columns and the rank it ran on: what the
// tooltip and the details panel show.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "storage/trace.h"
#include "ui/hit_test.h"

namespace moescope::ui {

struct SpanField {
  std::string label, value;
  bool operator==(const SpanField&) const = default;
};

// The span's record read back from the columns (bytes included).
storage::SpanView spanAt(const storage::Trace& trace, SpanRef ref);
// The rank info of the span's track, or nullptr.
const storage::RankInfo* rankOf(const storage::Trace& trace, int32_t track);

// Every field: name, category, phase, rank, stage, tp, dp, device, track, step, micro-batch, layer,
// expert, start and end (exact, from the run's first span), duration, and for communication bytes and
// bandwidth. A GPU record adds its kind, stream, correlation id and launching span, and a kernel its
// grid, block, registers and shared memory; an NCCL kernel's bytes are its launching span's, its
// bandwidth over the kernel's own time. Unset optional fields are left out unless all is true.
std::vector<SpanField> spanFields(const storage::Trace& trace, SpanRef ref, bool all = true);

// The short set for a tooltip: name, category, stage, micro-batch, layer, duration, and for
// communication bytes and bandwidth.
std::vector<SpanField> spanSummary(const storage::Trace& trace, SpanRef ref);

// The fields of a GPU record (kind, name, device, stream, exact times, duration, bytes, correlation
// id, launching span, kernel launch): what a record's tooltip shows when no span launched it.
std::vector<SpanField> gpuRecordFields(const storage::Trace& trace, const storage::GpuActivityRecord& record);

// "12.0 MiB", "512 B".
std::string formatBytes(int64_t bytes);
// bytes over ns as "12.5 GB/s".
std::string formatBandwidth(int64_t bytes, int64_t ns);

}  // namespace moescope::ui
