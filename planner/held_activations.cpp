#include "planner/held_activations.h"

#include <algorithm>

#include "engine/schedule.h"

namespace moescope::planner {

int64_t peakHeldLayers(const PlanTarget& t, int64_t layers, int stage) {
  using Kind = engine::PipelineOp::Kind;
  const std::vector<LayerRange> chunks = stageChunks(t, layers, stage);
  const engine::PipelineShape shape{t.schedule, t.pp, t.microbatches, t.virtual_stages};
  int64_t held = 0, peak = 0;
  for (const engine::PipelineOp& op : engine::stageSchedule(shape, stage)) {
    const LayerRange& r = chunks[static_cast<size_t>(op.chunk)];
    if (op.kind == Kind::Forward) held += r.end - r.begin;
    if (op.kind == Kind::Backward || op.kind == Kind::BackwardWeight) held -= r.end - r.begin;
    peak = std::max(peak, held);
  }
  return peak;
}

}  // namespace moescope::planner
