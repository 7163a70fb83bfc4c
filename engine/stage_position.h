// Where a stage executor is in the step (step, micro-batch, phase), and the span attributes that
// follow from it: shared by the CPU and CUDA executors so their spans carry the same fields.
#pragma once

#include <string_view>

#include "engine/communicator.h"
#include "tracer/span.h"

namespace moescope::engine {

class StagePosition {
 protected:
  tracer::SpanAttrs attrs(tracer::Category category, int layer = -1, int expert = -1) const {
    tracer::SpanAttrs a;
    a.category = category;
    a.phase = phase_;
    a.step = step_;
    a.microbatch = microbatch_;
    a.layer = layer;
    a.expert = expert;
    return a;
  }
  CommSpan comm(std::string_view name, tracer::Category category, int layer = -1) const {
    return CommSpan{name, attrs(category, layer)};
  }

  int step_ = 0, microbatch_ = -1;
  tracer::Phase phase_ = tracer::Phase::None;
};

}  // namespace moescope::engine
