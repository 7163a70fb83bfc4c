#include "storage/analysis_comm.h"

#include <array>

#include "storage/saturating.h"

namespace moescope::storage {

std::vector<CommStats> communicationByKind(std::span<const RankActivity> ranks) {
  std::array<CommStats, kCategoryCount> byKind{};
  std::array<int64_t, kCategoryCount> timeWithBytes{};
  for (const RankActivity& ra : ranks) {
    for (const Activity& a : ra.items) {
      if (!isCommunication(a.category)) continue;
      const auto k = static_cast<size_t>(a.category);
      if (k >= byKind.size()) continue;
      addTo(byKind[k].time_ns, a.end - a.start);
      byKind[k].count += 1;
      addTo(byKind[k].bytes, a.bytes);
      if (a.bytes > 0) addTo(timeWithBytes[k], a.end - a.start);
    }
  }
  std::vector<CommStats> out;
  for (size_t k = 0; k < byKind.size(); ++k) {
    if (byKind[k].count == 0) continue;
    CommStats s = byKind[k];
    s.kind = static_cast<Category>(k);
    s.gbytes_per_s =
        timeWithBytes[k] > 0 ? static_cast<double>(s.bytes) / static_cast<double>(timeWithBytes[k]) : 0;
    out.push_back(s);
  }
  return out;
}

}  // namespace moescope::storage
