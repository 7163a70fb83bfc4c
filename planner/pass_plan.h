// What one pass (or a step's closing work) costs on a stage in the predicted configuration: its spans
// from the cost model, scaled to the target (tokens per micro-batch, tp, group sizes, parameters per
// rank), laid out for each of the stage's ranks. The ranks of a stage run the same spans except their
// own experts, and meet at every collective (a tensor-parallel all-reduce, DPMoE's all-to-all, the
// gradient all-reduce), where a rank that arrives early waits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/schedule.h"
#include "planner/cost_model.h"
#include "planner/plan_target.h"

namespace moescope::planner {

struct PlanSegment {
  std::string name;
  storage::Category category = storage::Category::ComputeAttention;
  storage::Phase phase = storage::Phase::None;
  int32_t layer = storage::kNone, expert = storage::kNone;
  int64_t bytes = 0;
  double ns = 0, gap_ns = 0;
  int owner_tp = -1, owner_dp = -1;  // the rank that runs it (an expert's); -1: every rank
  bool sync = false;                 // a collective over the stage's ranks
  bool operator==(const PlanSegment&) const = default;
};

// A segment placed on one rank of the stage: offsets in solo time from the pass's start.
struct PlacedSpan {
  size_t segment = 0;  // index into PassPlan::segments; wait spans: the collective waited for
  int rank = 0;        // the rank's index in the stage, d x tp + t
  double start = 0, end = 0;
  bool wait = false;
  bool operator==(const PlacedSpan&) const = default;
};

struct PassPlan {
  std::vector<PlanSegment> segments;
  std::vector<PlacedSpan> placed;
  double work = 0;  // the stage's solo time for the whole pass (its slowest rank)
  bool operator==(const PassPlan&) const = default;
};

// The scaling from the calibration run to the target.
struct PlanContext {
  const CostModel* model = nullptr;
  PlanTarget target;
  double token_ratio = 1;  // target's tokens per micro-batch over the calibration run's
  bool operator==(const PlanContext&) const = default;
};
PlanContext planContext(const CostModel& model, const PlanTarget& target);

// A pass of the schedule on `stage`.
PassPlan planPass(const PlanContext& ctx, int stage, const engine::PipelineOp& op);
// The step's end on `stage`: the gradient all-reduce (dp > 1) and the gradient norm ("reduce"), the
// loss and norm all-reduce over every rank ("barrier"), the optimizer step ("update").
enum class TailPart : uint8_t { Reduce, Barrier, Update };
PassPlan planTail(const PlanContext& ctx, int stage, TailPart part);

// Lays out segments on the stage's ranks (PassPlan::placed, work).
void placeSegments(PassPlan& plan, int tp, int dp);

}  // namespace moescope::planner
