// The arrows drawn for a selected span, as Nsight Systems and Perfetto draw flows:
// - launch: a host span to every GPU record it launched (gpu_activity.span), or a GPU record to the
//   span that launched it;
// - pipeline: for the selected span's micro-batch (and step), each pipeline send to the receive of the
//   neighbouring stage (forward: stage s to s + 1, backward: s to s - 1; the same tensor- and
//   data-parallel ranks; an interleaved schedule's last stage sends chunk c to stage 0's chunk c + 1).
//   Where a run wrote no receive spans, the arrow goes to the peer's first span of that micro-batch,
//   phase and chunk that starts at or after the send.
// Found from the trace when the selection changes; turned into lines for each frame.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/trace.h"
#include "ui/hit_test.h"
#include "ui/time_mapping.h"
#include "ui/timeline_layout.h"
#include "ui/timeline_summary.h"

namespace moescope::ui {

enum class FlowKind : uint8_t { Launch, Pipeline };

struct Flow {
  SpanRef from, to;
  FlowKind kind = FlowKind::Launch;
  bool operator==(const Flow&) const = default;
};

// Every flow of the selected span, launch flows first.
std::vector<Flow> flowsOf(const storage::Trace& trace, SpanRef selected);

// The GPU record that a span of a GPU stream's track stands for (an index into Trace::gpu), if any.
std::optional<size_t> gpuRecordOf(const storage::Trace& trace, SpanRef span);
// The host span that a GPU record's launching span id refers to, if it is in the trace.
std::optional<SpanRef> launchingSpan(const storage::Trace& trace, const storage::GpuActivityRecord& record);

// A flow as a line: x in time-area pixels, y in timeline coordinates.
struct FlowLine {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  FlowKind kind = FlowKind::Launch;
  bool operator==(const FlowLine&) const = default;
};

// Lines of the flows for this view: a launch goes from the host box's bottom (at the record's start,
// kept inside the span) to the record's top; a pipeline flow from the send's end to the receive's end,
// at the middle of their boxes. A span in a collapsed rank starts or ends at its rank's header.
std::vector<FlowLine> flowLines(const storage::Trace& trace, const TimelineSummary& summary,
                                const TimelineLayout& layout, const TimeMapping& mapping,
                                const std::vector<Flow>& flows);

}  // namespace moescope::ui
