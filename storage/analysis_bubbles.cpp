#include "storage/analysis_bubbles.h"

#include <algorithm>
#include <map>

#include "storage/analysis_groups.h"
#include "storage/intervals.h"
#include "storage/saturating.h"

namespace moescope::storage {

double theoreticalBubbleShare(Schedule schedule, int32_t stages, int32_t microbatches,
                              int32_t virtual_stages) {
  if (stages < 1 || microbatches < 1 || virtual_stages < 1) return 0;
  // The idle time of a stage, (p - 1) of its passes' durations, against its work over the step, in
  // units of a micro-batch's work through the stage: a forward and a backward (3 forwards' time).
  const double idle = stages - 1.0, m = microbatches;
  switch (schedule) {
    case Schedule::Interleaved:  // each idle slot is a chunk's pass: 1/v of the stage's
      return idle / (virtual_stages * m + idle);
    case Schedule::ZbH1:  // W passes fill all but one forward's time of each 1F1B idle slot (F + B + W)
      return idle / (3 * m + idle);
    case Schedule::GPipe:
    case Schedule::OneFOneB:
      break;
  }
  return idle / (m + idle);
}

double theoreticalBubbleShare(const RunInfo& run) {
  return theoreticalBubbleShare(run.schedule, run.pp, run.microbatches, run.virtual_stages);
}

std::vector<StageStepBubble> bubbles(std::span<const RankActivity> ranks, const RunInfo& run) {
  const std::vector<StepExtent> extents = stepExtents(ranks);
  const auto ranksPerStage = countRanksPerStage(ranks);
  const double theoretical = theoreticalBubbleShare(run);
  std::map<std::pair<int32_t, int32_t>, StageStepBubble> rows;
  for (const auto& [stage, count] : ranksPerStage) {
    for (const StepExtent& e : extents) {
      rows[{stage, e.step}] = {stage, e.step, count, e.duration(), 0, 0, 0, theoretical};
    }
  }
  for (const RankActivity& ra : ranks) {
    const auto groups = groupByStep(ra);
    for (const StepExtent& e : extents) {
      std::vector<Interval> busy;
      if (auto g = groups.find(e.step); g != groups.end()) {
        for (const Activity* a : g->second) {
          if (a->category != Category::Wait) busy.push_back({a->start, a->end});
        }
      }
      const int64_t bubble = e.duration() - totalLength(mergeIntervals(std::move(busy)));
      StageStepBubble& row = rows[{ra.stage, e.step}];
      addTo(row.bubble_ns, bubble);
      row.max_bubble_ns = std::max(row.max_bubble_ns, bubble);
    }
  }
  std::vector<StageStepBubble> out;
  for (auto& [key, row] : rows) {
    row.bubble_ns /= row.ranks;
    row.share =
        row.extent_ns > 0 ? static_cast<double>(row.bubble_ns) / static_cast<double>(row.extent_ns) : 0;
    out.push_back(row);
  }
  return out;
}

std::vector<StageStepBubble> bubblesPerStage(std::span<const StageStepBubble> perStep) {
  std::map<int32_t, StageStepBubble> byStage;
  for (const StageStepBubble& r : perStep) {
    auto [it, fresh] = byStage.try_emplace(r.stage, r);
    StageStepBubble& s = it->second;
    s.step = kNone;
    if (!fresh) {
      addTo(s.extent_ns, r.extent_ns);
      addTo(s.bubble_ns, r.bubble_ns);
      addTo(s.max_bubble_ns, r.max_bubble_ns);
    }
  }
  std::vector<StageStepBubble> out;
  for (auto& [stage, s] : byStage) {
    s.share = s.extent_ns > 0 ? static_cast<double>(s.bubble_ns) / static_cast<double>(s.extent_ns) : 0;
    out.push_back(s);
  }
  return out;
}

}  // namespace moescope::storage
