// Engine spans as NVTX ranges in the "moescope" domain, with the span's category as the NVTX category
// and the category's colour (storage::categoryColour), so Nsight Systems shows the same structure as
// moescope's timeline.
#pragma once

#include <string_view>

#include "storage/trace_model.h"

namespace moescope::tracer::gpu {

// name must be a NUL-terminated literal or otherwise stable text (engine span names are literals).
void nvtxPush(std::string_view name, storage::Category category);
void nvtxPop();

}  // namespace moescope::tracer::gpu
