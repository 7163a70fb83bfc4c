#include "engine/routing_stats.h"

#include <stdexcept>
#include <utility>

namespace moescope::engine {

void addRouting(RoutingStats& stats, storage::MoeRouting where, std::span<const int32_t> offsets) {
  if (offsets.empty()) throw std::logic_error("routing: no expert offsets");
  const size_t experts = offsets.size() - 1;
  if (stats.kept.size() < experts) stats.kept.resize(experts, 0);
  where.kept.resize(experts);
  for (size_t e = 0; e < experts; ++e) {
    where.kept[e] = offsets[e + 1] - offsets[e];
    stats.kept[e] += where.kept[e];
  }
  where.dropped = where.assignments - offsets[experts];
  stats.dropped += where.dropped;
  stats.groups.push_back(std::move(where));
}

}  // namespace moescope::engine
