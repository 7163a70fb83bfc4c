// Where the stage pass is in the step (step, micro-batch, chunk, phase), and the span attributes that follow
// from it, so that every span of a stage carries the same fields whatever records it.
#pragma once

#include <string_view>

#include "engine/communicator.h"
#include "tracer/span.h"

namespace moescope::engine {

// What a span or a collective is: every one a stage records is a constant of this type.
struct SpanName {
  std::string_view name;
  tracer::Category category;
};

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
    a.chunk = chunk_;
    return a;
  }
  CommSpan comm(const SpanName& what, int layer = -1) const {
    return CommSpan{what.name, attrs(what.category, layer)};
  }

  int step_ = 0, microbatch_ = -1;
  int chunk_ = -1;  // the pass's chunk on a stage of several (interleaved), else -1
  tracer::Phase phase_ = tracer::Phase::None;
};

}  // namespace moescope::engine
