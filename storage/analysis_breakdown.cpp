#include "storage/analysis_breakdown.h"

#include <algorithm>
#include <map>
#include <set>

#include "storage/intervals.h"
#include "storage/saturating.h"

namespace moescope::storage {

std::vector<int32_t> stepsIntersecting(std::span<const StepExtent> extents, int64_t t0, int64_t t1) {
  std::vector<int32_t> out;
  for (const StepExtent& e : extents) {
    if (e.end > t0 && e.start < t1) out.push_back(e.step);
  }
  return out;
}

Breakdown breakdownOfSteps(std::span<const RankActivity> ranks, std::span<const int32_t> steps) {
  Breakdown out;
  const std::vector<StepExtent> allExtents = stepExtents(ranks);
  std::set<int32_t> chosen(steps.begin(), steps.end());
  if (chosen.empty()) {
    for (const StepExtent& e : allExtents) chosen.insert(e.step);
  }
  std::map<int32_t, StepExtent> extents;
  for (const StepExtent& e : allExtents) {
    if (chosen.count(e.step)) extents.emplace(e.step, e);
  }
  for (const auto& [step, e] : extents) out.steps.push_back(step);
  int64_t extentSum = 0;
  for (const auto& [step, e] : extents) addTo(extentSum, e.duration());

  // Only the chosen steps' activities take part.
  std::vector<RankActivity> filtered;
  filtered.reserve(ranks.size());
  for (const RankActivity& ra : ranks) {
    RankActivity f{ra.rank, ra.stage, {}};
    for (const Activity& a : ra.items) {
      if (a.step != kNone && extents.count(a.step)) f.items.push_back(a);
    }
    filtered.push_back(std::move(f));
  }

  std::map<int32_t, BreakdownRow> stages;
  for (const RankActivity& ra : filtered) {
    BreakdownRow row;
    row.stage = ra.stage;
    row.rank = ra.rank;
    row.extent_ns = extentSum;
    for (const StageStepBusy& b : busyByStageStep(std::span<const RankActivity>(&ra, 1))) {
      for (size_t c = 0; c < row.busy.ns.size(); ++c) addTo(row.busy.ns[c], b.busy.ns[c]);
    }
    for (const auto& [step, e] : extents) {
      std::vector<Interval> busy;
      for (const Activity& a : ra.items) {
        if (a.step == step && a.category != Category::Wait) busy.push_back({a.start, a.end});
      }
      addTo(row.bubble_ns, e.duration() - totalLength(mergeIntervals(std::move(busy))));
    }
    out.ranks.push_back(row);
    auto [it, fresh] = stages.try_emplace(ra.stage, row);
    BreakdownRow& s = it->second;
    s.rank = kNone;
    if (!fresh) {
      ++s.ranks;
      for (size_t c = 0; c < s.busy.ns.size(); ++c) addTo(s.busy.ns[c], row.busy.ns[c]);
      addTo(s.bubble_ns, row.bubble_ns);
    }
  }
  for (auto& [stage, s] : stages) {
    for (int64_t& v : s.busy.ns) v /= s.ranks;
    s.bubble_ns /= s.ranks;
    out.stages.push_back(s);
  }
  std::stable_sort(out.ranks.begin(), out.ranks.end(), [](const BreakdownRow& a, const BreakdownRow& b) {
    return a.stage != b.stage ? a.stage < b.stage : a.rank < b.rank;
  });
  out.communication = communicationByKind(filtered);
  out.overlap = overlapOfRun(filtered);
  return out;
}

}  // namespace moescope::storage
