#include "storage/analysis_steps.h"

#include <algorithm>
#include <map>

#include "storage/saturating.h"

namespace moescope::storage {

std::vector<StepExtent> stepExtents(std::span<const RankActivity> ranks) {
  std::map<int32_t, StepExtent> byStep;
  for (const RankActivity& ra : ranks) {
    for (const Activity& a : ra.items) {
      if (a.step == kNone) continue;
      auto [it, fresh] = byStep.try_emplace(a.step, StepExtent{a.step, a.start, a.end});
      if (!fresh) {
        it->second.start = std::min(it->second.start, a.start);
        it->second.end = std::max(it->second.end, a.end);
      }
    }
  }
  std::vector<StepExtent> out;
  for (const auto& [step, extent] : byStep) out.push_back(extent);
  return out;
}

std::vector<StepTime> stepTimes(std::span<const StepExtent> extents, const RunInfo& run,
                                std::span<const StepMetric> metrics) {
  std::vector<StepTime> out;
  for (const StepExtent& e : extents) {
    StepTime t;
    t.step = e.step;
    t.duration_ns = e.duration();
    t.tokens = run.tokens_per_step;
    auto m =
        std::find_if(metrics.begin(), metrics.end(), [&](const StepMetric& s) { return s.step == e.step; });
    if (m != metrics.end() && m->tokens > 0) t.tokens = m->tokens;
    t.tokens_per_s =
        t.duration_ns > 0 ? static_cast<double>(t.tokens) * 1e9 / static_cast<double>(t.duration_ns) : 0;
    out.push_back(t);
  }
  return out;
}

StepSummary summarizeSteps(std::span<const StepTime> steps) {
  StepSummary s;
  if (steps.empty()) return s;
  std::vector<int64_t> durations;
  int64_t total = 0, tokens = 0;
  for (const StepTime& t : steps) {
    durations.push_back(t.duration_ns);
    addTo(total, t.duration_ns);
    addTo(tokens, t.tokens);
  }
  std::sort(durations.begin(), durations.end());
  s.steps = static_cast<int32_t>(steps.size());
  s.median_ns = durations[(durations.size() - 1) / 2];
  s.mean_ns = static_cast<double>(total) / static_cast<double>(steps.size());
  s.tokens_per_s = total > 0 ? static_cast<double>(tokens) * 1e9 / static_cast<double>(total) : 0;
  return s;
}

}  // namespace moescope::storage
