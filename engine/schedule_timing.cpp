#include "engine/schedule_timing.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <tuple>

namespace moescope::engine {

namespace {

using Key = std::tuple<int, int, int, int>;  // stage, kind, micro-batch, chunk

Key keyOf(int stage, const PipelineOp& op) {
  return {stage, static_cast<int>(op.kind), op.microbatch, op.chunk};
}

}  // namespace

double PassCosts::of(const PipelineShape& shape, const PipelineOp& op) const {
  const double v = shape.virtual_stages;
  switch (op.kind) {
    case PipelineOp::Kind::Forward:
      return forward / v;
    case PipelineOp::Kind::Backward:
      return backward / v;
    case PipelineOp::Kind::BackwardInput:
      return backward * input_share / v;
    case PipelineOp::Kind::BackwardWeight:
      return backward * (1 - input_share) / v;
  }
  return 0;
}

ScheduleTiming timeSchedule(const PipelineShape& shape, const PassDuration& duration) {
  std::vector<std::vector<PipelineOp>> orders;
  for (int s = 0; s < shape.stages; ++s) orders.push_back(stageSchedule(shape, s));
  return timePasses(shape, orders, duration);
}

ScheduleTiming timePasses(const PipelineShape& shape, const std::vector<std::vector<PipelineOp>>& lists,
                          const PassDuration& duration) {
  ScheduleTiming t;
  t.stages.resize(lists.size());
  std::vector<size_t> next(lists.size(), 0);
  std::vector<double> free(lists.size(), 0);
  std::map<Key, double> ended;
  // Each sweep advances every stage as far as its next pass's inputs allow; a sweep that advances no
  // stage while passes remain means the orders wait on each other.
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t s = 0; s < lists.size(); ++s) {
      while (next[s] < lists[s].size()) {
        const PipelineOp& op = lists[s][next[s]];
        double start = free[s];
        bool ready = true;
        for (const PassRef& dep : passDependencies(shape, static_cast<int>(s), op)) {
          auto it = ended.find(keyOf(dep.stage, dep.op));
          if (it == ended.end()) {
            ready = false;
            break;
          }
          start = std::max(start, it->second);
        }
        if (!ready) break;
        const double end = start + duration(static_cast<int>(s), op);
        ended[keyOf(static_cast<int>(s), op)] = end;
        t.stages[s].push_back({static_cast<int>(s), op, start, end});
        free[s] = end;
        t.makespan = std::max(t.makespan, end);
        ++next[s];
        progress = true;
      }
    }
  }
  for (size_t s = 0; s < lists.size(); ++s) {
    if (next[s] < lists[s].size())
      throw std::logic_error("schedule: stage " + std::to_string(s) + " cannot run " +
                             passName(lists[s][next[s]], shape.virtual_stages) +
                             ": the stages wait on each other");
  }
  for (const auto& passes : t.stages) {
    double busy = 0;
    for (const TimedPass& p : passes) busy += p.end - p.start;
    t.bubble_share.push_back(t.makespan > 0 ? (t.makespan - busy) / t.makespan : 0);
  }
  return t;
}

}  // namespace moescope::engine
