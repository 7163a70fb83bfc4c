#include "storage/analysis_busy.h"

#include <map>

#include "storage/analysis_groups.h"
#include "storage/intervals.h"
#include "storage/saturating.h"

namespace moescope::storage {

std::vector<StageStepBusy> busyByStageStep(std::span<const RankActivity> ranks) {
  std::map<std::pair<int32_t, int32_t>, StageStepBusy> rows;
  const auto ranksPerStage = countRanksPerStage(ranks);
  for (const RankActivity& ra : ranks) {
    for (const auto& [step, items] : groupByStep(ra)) {
      StageStepBusy& row = rows[{ra.stage, step}];
      row.stage = ra.stage;
      row.step = step;
      row.ranks = ranksPerStage.at(ra.stage);
      std::array<std::vector<Interval>, kCategoryCount> perCategory;
      std::vector<Interval> notWait;
      for (const Activity* a : items) {
        if (static_cast<size_t>(a->category) >= perCategory.size()) continue;  // not a category: no index
        perCategory[static_cast<size_t>(a->category)].push_back({a->start, a->end});
        if (a->category != Category::Wait) notWait.push_back({a->start, a->end});
      }
      for (size_t c = 0; c < perCategory.size(); ++c) {
        addTo(row.busy.ns[c], totalLength(mergeIntervals(std::move(perCategory[c]))));
      }
      addTo(row.busy_ns, totalLength(mergeIntervals(std::move(notWait))));
    }
  }
  std::vector<StageStepBusy> out;
  for (auto& [key, row] : rows) {
    for (int64_t& v : row.busy.ns) v /= row.ranks;
    row.busy_ns /= row.ranks;
    out.push_back(row);
  }
  return out;
}

}  // namespace moescope::storage
