#include "planner/plan_target.h"

#include <algorithm>

#include "engine/schedule.h"

namespace moescope::planner {

PlanTarget targetOf(const storage::RunInfo& run, int steps) {
  PlanTarget t;
  t.schedule = run.schedule;
  t.pp = run.pp;
  t.tp = run.tp;
  t.dp = run.dp;
  t.microbatches = run.microbatches;
  t.virtual_stages = run.virtual_stages;
  t.layout = run.layout;
  t.steps = std::max(2, steps);
  return t;
}

std::string targetProblem(const PlanTarget& t, const ModelShape& m, const storage::RunInfo& calibration) {
  auto n = [](int64_t v) { return std::to_string(v); };
  if (t.pp < 1 || t.tp < 1 || t.dp < 1 || t.microbatches < 1 || t.virtual_stages < 1)
    return "pp, tp, dp, micro-batches and virtual stages must be at least 1";
  if (t.steps < 1) return "steps must be at least 1";
  if (m.heads % t.tp != 0) return "tp " + n(t.tp) + " does not divide the " + n(m.heads) + " attention heads";
  if (m.d_ff % t.tp != 0) return "tp " + n(t.tp) + " does not divide d_ff " + n(m.d_ff);
  if (t.pp > m.layers)
    return "pp " + n(t.pp) + ": more pipeline stages than the model's " + n(m.layers) + " layers";
  if (m.global_batch % (static_cast<int64_t>(t.dp) * t.microbatches) != 0)
    return "the global batch " + n(m.global_batch) + " does not split into dp " + n(t.dp) + " x " +
           n(t.microbatches) + " micro-batches";
  const std::string layout = m.experts == 0 ? "dense" : t.layout;
  if (layout != calibration.layout)
    return "layout " + t.layout + ": the calibration run is " + calibration.layout +
           ", and a prediction keeps its layout (another one's expert exchange was not measured)";
  if (layout == "ppmoe" && m.experts % t.tp != 0)
    return "tp " + n(t.tp) + " does not divide the " + n(m.experts) + " experts (ppmoe splits them over tp)";
  if (layout == "dpmoe" && m.experts % t.dp != 0)
    return "dp " + n(t.dp) + " does not divide the " + n(m.experts) + " experts (dpmoe splits them over dp)";
  if (layout == "dpmoe" && t.tp != 1) return "dpmoe needs tp 1";
  if (layout == "dpmoe" && t.dp != calibration.dp)
    return "dp " + n(t.dp) + ": a dpmoe prediction keeps the calibration run's dp " + n(calibration.dp) +
           " (its all-to-all and expert placement depend on it)";
  if (t.tp > 1 && calibration.tp == 1)
    return "tp " + n(t.tp) +
           ": the calibration run has tp 1, so it measured no tensor-parallel all-reduce to scale";
  const engine::PipelineShape shape{t.schedule, t.pp, t.microbatches, t.virtual_stages};
  return engine::scheduleProblem(shape, m.layers);
}

std::vector<LayerRange> stageChunks(const PlanTarget& t, int64_t layers, int stage) {
  std::vector<LayerRange> chunks;
  if (t.schedule == storage::Schedule::Interleaved) {
    const int64_t per_chunk = layers / (static_cast<int64_t>(t.pp) * t.virtual_stages);
    for (int c = 0; c < t.virtual_stages; ++c) {
      const int64_t first = (static_cast<int64_t>(c) * t.pp + stage) * per_chunk;
      chunks.push_back({first, first + per_chunk});
    }
    return chunks;
  }
  const int64_t base = layers / t.pp, extra = layers % t.pp;
  auto first = [&](int64_t s) { return s * base + std::min(s, extra); };
  chunks.push_back({first(stage), first(stage + 1)});
  return chunks;
}

std::string describe(const PlanTarget& t) {
  std::string s = std::string(storage::scheduleName(t.schedule)) + " pp " + std::to_string(t.pp) + " tp " +
                  std::to_string(t.tp) + " dp " + std::to_string(t.dp) + " m " +
                  std::to_string(t.microbatches);
  if (t.schedule == storage::Schedule::Interleaved) s += " v " + std::to_string(t.virtual_stages);
  return s;
}

}  // namespace moescope::planner
