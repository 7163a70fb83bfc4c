// What the router did in a step, for the run file: per routing group and MoE layer (the moe_routing
// tables), and summed per expert (the tokens-per-expert counters).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "storage/trace_model.h"

namespace moescope::engine {

// How one rank's routing groups were routed in a step: kept assignments per expert and assignments
// dropped by the capacity limit, summed over its stage's MoE layers and micro-batches, and per
// (micro-batch, layer) as routed.
struct RoutingStats {
  std::vector<int64_t> kept;  // [E]; empty where the rank routes nothing (no MoE layer)
  int64_t dropped = 0;
  std::vector<storage::MoeRouting> groups;  // in routing order
  bool operator==(const RoutingStats&) const = default;
};

// Adds a routing group's layer from its experts' slot offsets ([E + 1]: expert e kept the assignments
// offsets[e]..offsets[e + 1]; the rest of the group's `assignments` were dropped).
void addRouting(RoutingStats& stats, storage::MoeRouting where, std::span<const int32_t> offsets);

}  // namespace moescope::engine
