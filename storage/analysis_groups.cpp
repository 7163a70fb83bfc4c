#include "storage/analysis_groups.h"

namespace moescope::storage {

std::map<int32_t, std::vector<const Activity*>> groupByStep(const RankActivity& rank) {
  std::map<int32_t, std::vector<const Activity*>> groups;
  for (const Activity& a : rank.items) groups[a.step].push_back(&a);
  return groups;
}

std::map<int32_t, int32_t> countRanksPerStage(std::span<const RankActivity> ranks) {
  std::map<int32_t, int32_t> count;
  for (const RankActivity& ra : ranks) ++count[ra.stage];
  return count;
}

}  // namespace moescope::storage
