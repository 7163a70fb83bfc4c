// Export of the spans as CSV, one row per span, tracks in order and spans by start within a track:
// track,rank,stage,start_ns,end_ns,duration_ns,name,category,phase,step,microbatch,layer,expert,bytes,
// chunk
// Missing step, micro-batch, layer and expert are empty fields; names are quoted when they need it.
#pragma once

#include <cstdint>
#include <ostream>

#include "storage/trace.h"

namespace moescope::storage {

// Writes the header and one row per span; returns the number of spans written.
int64_t exportSpansCsv(const Trace& trace, std::ostream& out);

}  // namespace moescope::storage
