// The MoE layers' routing and what it cost in time, from the run's routing tables (Trace::routing) and
// its host spans.
//
// Load. Per routing group (one micro-batch of one data-parallel replica at one layer), the imbalance
// is max / mean of the assignments each expert kept (1 = balanced, E = all on one expert) and the
// coefficient of variation is their standard deviation over their mean; a layer reports the mean over
// its groups (and the worst group's max / mean). The dropped share is dropped over routed assignments.
//
// Time. The experts of a layer meet at one collective per pass once they are done: PPMoE's
// tensor-parallel all-reduce (span kMoeAllreduceSpan), or DPMoE's all-to-all over the data-parallel
// group that returns their outputs (kMoeReturnSpan, kMoeReturnGradSpan; the dispatch before the
// experts waits for what came before them, not for them). Each rank arrives at
// it when its own experts are done (the start of its `wait` span there, else of the collective); the
// others wait for the last to arrive. Per instance (the group's ranks, step, micro-batch, layer,
// phase, k-th such collective), every rank waited (last arrival - its arrival), and all that waiting is
// attributed to the last rank. When the last rank is also the one whose experts had the most
// tokens in that micro-batch and layer (more than any other rank of the group), its waiting counts as
// caused by imbalance. A rank's tokens
// are the kept assignments of the experts it computes: those its compute.expert spans name, or where
// a span covers all of a rank's experts, those MODEL.md's layout gives the rank (E / tp per tp rank
// under PPMoE, E / dp per dp rank under DPMoE, in order).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "storage/trace.h"

namespace moescope::storage {

struct MoeLayerStats {
  int32_t layer = 0;
  int64_t groups = 0;  // routing groups: steps x micro-batches x replicas
  int64_t assignments = 0, kept = 0, dropped = 0;
  double dropped_share = 0;  // dropped / assignments
  double imbalance = 0;      // max / mean kept per expert, mean over the groups
  double max_imbalance = 0;  // the worst group's
  double cv = 0;             // coefficient of variation of kept per expert, mean over the groups
  std::vector<int64_t> kept_per_expert;
  int32_t hot_expert = kNone;  // the most kept assignments over the run
  double hot_share = 0;        // its share of the layer's kept assignments
  int32_t hot_rank = kNone;    // a rank computing the hot expert (the lowest), kNone if no span says
  // Waiting at the layer's collective, summed over all ranks and instances.
  int64_t collectives = 0;          // instances matched across their group's ranks
  int64_t wait_ns = 0;              // every rank's waiting for the last to arrive
  int64_t imbalance_wait_ns = 0;    // of it, where the last to arrive had the most tokens
  int32_t waited_for_rank = kNone;  // the rank the others waited for the longest in total
  int64_t waited_for_ns = 0;        // how long
  bool operator==(const MoeLayerStats&) const = default;
};

// One rank at one MoE layer, over the run.
struct MoeRankLoad {
  int32_t layer = 0, rank = 0;
  int64_t tokens = 0;     // kept assignments of the experts it computes
  int64_t expert_ns = 0;  // its compute.expert spans there (every phase)
  int64_t waited_ns = 0;  // its waiting at the layer's collective
  int64_t caused_ns = 0;  // the others' waiting for it
  bool operator==(const MoeRankLoad&) const = default;
};

struct MoeStats {
  int32_t experts = 0;
  int32_t steps = 0;                  // steps with routing
  std::string collective;             // "tp all-reduce" (PPMoE) or "all-to-all" (DPMoE)
  std::vector<MoeLayerStats> layers;  // ascending
  std::vector<MoeRankLoad> ranks;     // by layer, then rank
  int64_t assignments = 0, dropped = 0;
  double dropped_share = 0;
  double imbalance = 0;  // mean of the layers'
  int64_t wait_ns = 0, imbalance_wait_ns = 0;
  bool empty() const { return layers.empty(); }
  bool operator==(const MoeStats&) const = default;
};

MoeStats analyzeMoe(const Trace& trace);
nlohmann::json moeStatsToJson(const MoeStats& s);
// Aligned text for `stats`; empty for a run without routing.
std::string formatMoeStats(const MoeStats& s);

// max / mean and standard deviation / mean of a group's kept assignments per expert (0, 0 when none
// were kept).
double loadImbalance(const std::vector<int64_t>& kept);
double loadCv(const std::vector<int64_t>& kept);

// The load as a grid for the heatmap: rows are (layer, expert), columns are steps (micro-batches and
// replicas summed) or (step, micro-batch) (replicas summed).
struct MoeGridColumn {
  int32_t step = 0;
  int32_t microbatch = kNone;  // kNone: the whole step
  bool operator==(const MoeGridColumn&) const = default;
};
struct MoeLoadGrid {
  int32_t experts = 0;
  std::vector<int32_t> layers;         // the MoE layers, ascending
  std::vector<MoeGridColumn> columns;  // by step, then micro-batch
  std::vector<int64_t> kept;           // [row][column], row = layer index x experts + expert
  std::vector<int64_t> assignments;    // [layer index][column]
  std::vector<int64_t> dropped;        // [layer index][column]
  size_t rows() const { return layers.size() * static_cast<size_t>(experts); }
  int64_t keptAt(size_t row, size_t column) const { return kept[row * columns.size() + column]; }
  int64_t assignmentsAt(size_t layerIndex, size_t column) const {
    return assignments[layerIndex * columns.size() + column];
  }
  int64_t droppedAt(size_t layerIndex, size_t column) const {
    return dropped[layerIndex * columns.size() + column];
  }
  // Kept over the balanced share (the column's assignments / experts): 1 balanced, 0 idle.
  double relativeAt(size_t row, size_t column) const;
  // max / mean of the layer's experts in the column.
  double imbalanceAt(size_t layerIndex, size_t column) const;
  bool operator==(const MoeLoadGrid&) const = default;
};
MoeLoadGrid moeLoadGrid(const Trace& trace, bool perMicrobatch);

// CSV of the routing table, one line per (step, micro-batch, layer, replica, expert) with the group's
// assignments and dropped beside the expert's kept. Returns the lines written (without the header).
int64_t exportMoeLoadCsv(const Trace& trace, std::ostream& out);

}  // namespace moescope::storage
