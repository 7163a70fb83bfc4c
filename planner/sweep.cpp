#include "planner/sweep.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "planner/planner_error.h"
#include "planner/simulate.h"
#include "storage/analysis_compare.h"

namespace moescope::planner {

using storage::Schedule;

std::vector<PlanTarget> sweepTargets(const CostModel& m, const SweepAxes& axes,
                                     std::vector<std::string>& skipped) {
  const int world = m.run.pp * m.run.tp * m.run.dp;
  const int tp = axes.tp > 0 ? axes.tp : m.run.tp;
  std::vector<Schedule> schedules = axes.schedules;
  if (schedules.empty())
    schedules = {Schedule::GPipe, Schedule::OneFOneB, Schedule::Interleaved, Schedule::ZbH1};
  std::vector<int> pps = axes.pp;
  if (pps.empty())
    for (int p = 1; p <= world; ++p)
      if (world % (p * tp) == 0 && p <= m.model.layers) pps.push_back(p);
  std::vector<int> mbs = axes.microbatches;
  if (mbs.empty())
    for (int mb = 1; mb <= 64; mb *= 2) mbs.push_back(mb);
  std::vector<PlanTarget> targets;
  for (Schedule s : schedules) {
    for (int pp : pps) {
      if (world % (pp * tp) != 0) {
        skipped.push_back("pp " + std::to_string(pp) + " tp " + std::to_string(tp) +
                          ": does not divide the " + std::to_string(world) + " ranks");
        continue;
      }
      for (int mb : mbs) {
        PlanTarget t = targetOf(m.run, axes.steps);
        t.schedule = s;
        t.pp = pp;
        t.tp = tp;
        t.dp = world / (pp * tp);
        t.microbatches = mb;
        t.virtual_stages = s == Schedule::Interleaved ? axes.virtual_stages : 1;
        if (m.model.global_batch % (static_cast<int64_t>(t.dp) * mb) != 0 && axes.microbatches.empty())
          continue;
        if (const std::string problem = targetProblem(t, m.model, m.run); !problem.empty()) {
          skipped.push_back(describe(t) + ": " + problem);
          continue;
        }
        targets.push_back(t);
      }
    }
  }
  return targets;
}

SweepRow summarize(const PlanTarget& target, const storage::Trace& predicted) {
  const storage::RunSummary s = storage::summarizeRun(predicted);
  return {target, s.step_ns, s.bubble_share, s.tokens_per_s, s.peak_activation_bytes};
}

SweepResult sweep(const CostModel& m, const SweepAxes& axes,
                  const std::function<void(size_t, size_t)>& progress) {
  SweepResult result;
  const std::vector<PlanTarget> targets = sweepTargets(m, axes, result.skipped);
  for (size_t i = 0; i < targets.size(); ++i) {
    result.rows.push_back(summarize(targets[i], predict(m, targets[i]).trace));
    if (progress) progress(i + 1, targets.size());
  }
  std::stable_sort(result.rows.begin(), result.rows.end(),
                   [](const SweepRow& a, const SweepRow& b) { return a.step_ns < b.step_ns; });
  return result;
}

std::string formatSweep(const SweepResult& r) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%4s  %-12s %3s %3s %3s %4s %3s %12s %8s %12s %14s\n", "rank", "schedule",
                "pp", "tp", "dp", "m", "v", "step ms", "bubble", "tokens/s", "peak act. MiB");
  out += line;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const SweepRow& row = r.rows[i];
    const PlanTarget& t = row.target;
    std::snprintf(line, sizeof line, "%4zu  %-12s %3d %3d %3d %4d %3d %12.3f %7.1f%% %12.0f %14.3f\n", i + 1,
                  std::string(storage::scheduleName(t.schedule)).c_str(), t.pp, t.tp, t.dp, t.microbatches,
                  t.virtual_stages, static_cast<double>(row.step_ns) / 1e6, 100 * row.bubble_share,
                  row.tokens_per_s, static_cast<double>(row.peak_activation_bytes) / (1024.0 * 1024.0));
    out += line;
  }
  if (!r.skipped.empty()) {
    out += "\nnot expressible:\n";
    for (const std::string& s : r.skipped) out += "  " + s + "\n";
  }
  return out;
}

nlohmann::json sweepToJson(const SweepResult& r) {
  nlohmann::json j;
  j["predicted"] = true;
  j["rows"] = nlohmann::json::array();
  for (const SweepRow& row : r.rows) {
    const PlanTarget& t = row.target;
    j["rows"].push_back({{"schedule", storage::scheduleName(t.schedule)},
                         {"pp", t.pp},
                         {"tp", t.tp},
                         {"dp", t.dp},
                         {"microbatches", t.microbatches},
                         {"virtual_stages", t.virtual_stages},
                         {"step_ns", row.step_ns},
                         {"bubble_share", row.bubble_share},
                         {"tokens_per_s", row.tokens_per_s},
                         {"peak_activation_bytes", row.peak_activation_bytes}});
  }
  j["skipped"] = r.skipped;
  return j;
}

}  // namespace moescope::planner
