// The predicted run: a discrete-event simulation of the target configuration over the schedule's own
// order and dependencies (engine/schedule.h: stageSchedule, passDependencies, the code the engine
// runs), each pass costing what the cost model says (pass_plan.h), and the result as a run in memory
// with the spans, micro-batch rows, waits, step metrics and activation counters a measured run has.
//
// Each stage runs its list in order: a pass starts once the stage is free and the passes it reads
// have ended (a pipeline send is part of its sender's pass, a receive of its receiver's). After its
// last pass a stage reduces its gradients, meets every other stage in the loss-and-norm all-reduce
// and steps its optimizer; the next step follows. With host cores to share (a CPU calibration run) the
// ranks' threads take turns on them as host_scheduler.h says: processor sharing, or time slices.
#pragma once

#include <functional>
#include <string>

#include "planner/cost_model.h"
#include "planner/plan_target.h"
#include "storage/trace.h"

namespace moescope::planner {

struct Prediction {
  PlanTarget target;
  storage::Trace trace;  // as RunReader::load would return it; run.predicted is set
  bool operator==(const Prediction&) const = default;
};

// Checks the target (targetProblem; PlanError naming the rule it breaks) and simulates it.
Prediction predict(const CostModel& model, const PlanTarget& target);

}  // namespace moescope::planner
