// Export to the Chrome Trace Event format (JSON), which Perfetto UI and chrome://tracing open.
// One process per rank (named "rank R (stage S, tp T, dp D)" by metadata events), one thread per
// track; each span is a complete event ("X") with its category as "cat" and stage, step, micro-batch,
// layer, expert, chunk, phase and bytes in "args"; counters become counter events ("C"). GPU activity goes on
// its stream's thread under a process per GPU ("GPU d (rank r)"), with a flow arrow ("s"/"f", bound to
// the enclosing slices) from the span that launched it to each kernel, copy and memset. Timestamps are
// microseconds (three decimals, so no nanosecond is lost) from the earliest span, whose run-clock time is in
// otherData.origin_ns.
#pragma once

#include <cstdint>
#include <ostream>

#include "storage/trace.h"

namespace moescope::storage {

// Writes the trace; returns the number of trace events written (metadata included).
int64_t exportChromeTrace(const Trace& trace, std::ostream& out);

}  // namespace moescope::storage
