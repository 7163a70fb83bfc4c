// The configuration a prediction is for: schedule, pipeline stages, micro-batches, virtual stages,
// layout, tp and dp, and how many steps to simulate. What `plan`'s options set; every value left out
// keeps the calibration run's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "planner/model_shape.h"
#include "storage/trace_model.h"

namespace moescope::planner {

struct PlanTarget {
  storage::Schedule schedule = storage::Schedule::OneFOneB;
  int pp = 1, tp = 1, dp = 1, microbatches = 1, virtual_stages = 1;
  std::string layout = "ppmoe";
  int steps = 3;
  bool operator==(const PlanTarget&) const = default;
};

// The calibration run's own configuration (steps: its step count, at least 2).
PlanTarget targetOf(const storage::RunInfo& run, int steps);

// The first rule of MODEL.md the target breaks over the model (tp dividing the heads, d_ff and the
// experts; at least one layer per stage; the schedule's rules; the global batch over dp x
// micro-batches), or what the calibration run cannot tell about it (another MoE layout; tensor
// parallelism from a run that measured no tensor-parallel all-reduce). "" when it can be predicted.
std::string targetProblem(const PlanTarget& target, const ModelShape& model,
                          const storage::RunInfo& calibration);

// Layers [begin, end) of each of a stage's chunks, as the engine cuts them (engine/layout.cpp):
// interleaved cuts pp x v equal chunks, chunk c of stage s being model chunk c x pp + s; otherwise the
// first layers % pp stages take one layer more.
struct LayerRange {
  int64_t begin = 0, end = 0;
  bool operator==(const LayerRange&) const = default;
};
std::vector<LayerRange> stageChunks(const PlanTarget& target, int64_t layers, int stage);

// "1f1b pp 4 tp 1 dp 1 m 8" (and " v 2" for interleaved): how tables and run names show a target.
std::string describe(const PlanTarget& target);

}  // namespace moescope::planner
