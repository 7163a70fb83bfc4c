// The cost model the planner fits to one measured run: what each pass of each layer cost, what each
// transfer cost as a function of its size, what the optimizer cost per parameter, and what a
// micro-batch's saved activations weigh. docs/PLANNER.md says how each is scaled to another
// configuration and what the model cannot know.
//
// Every duration is "solo" time: on the CPU backend the ranks are threads sharing the host's cores, so
// a span measured while more ranks were busy than there were cores is scaled down to the time it
// would take with a core to itself (processor sharing: each busy rank gets min(1, cores / busy) of a
// core; averaged over the many spans a fit takes, time slices come to the same). The simulation
// shares the cores again in the predicted configuration (host_scheduler.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "planner/host_scheduler.h"
#include "planner/model_shape.h"
#include "planner/transfer_fit.h"
#include "storage/trace.h"

namespace moescope::planner {

// One span of a pass as the calibration run measured it: medians over every step after the first
// and every micro-batch.
struct SegmentCost {
  std::string name;
  storage::Category category = storage::Category::ComputeAttention;
  int32_t expert = storage::kNone;
  double ns = 0;      // solo duration
  double gap_ns = 0;  // untraced time before it within the pass (launches, bookkeeping), solo
  int64_t bytes = 0;  // communication payload
  bool operator==(const SegmentCost&) const = default;
};

// A layer's pass as a list of entries in the order the engine runs them; an expert entry stands for
// the per-expert spans (names in `expert_names`, e.g. gather, expert, scatter) of every expert the
// rank holds, each expert's cost looked up in CostModel::experts.
struct TemplateEntry {
  SegmentCost segment;                    // plain entries
  std::vector<std::string> expert_names;  // non-empty: an expert entry
  std::vector<storage::Category> expert_categories;
  bool operator==(const TemplateEntry&) const = default;
};

using LayerKey = std::pair<int64_t, storage::Phase>;
using ExpertKey = std::tuple<int64_t, storage::Phase, std::string, int32_t>;  // layer, phase, name, expert
using BoundaryKey = std::pair<std::string, storage::Phase>;  // embed, loss, recv_*, send_* by phase

struct CostModel {
  storage::RunInfo run;  // the calibration run
  std::string path;      // its file
  ModelShape model;
  int steps = 0;                     // the calibration run's steps
  double tokens_per_microbatch = 0;  // per data-parallel replica
  // A CPU run's host: the cores its ranks share (effective: what the run got; 0: a device per rank)
  // and the scheduler's time slice (0: processor sharing): host_scheduler.h.
  HostShare host;
  std::map<LayerKey, std::vector<TemplateEntry>> layers;
  std::map<ExpertKey, SegmentCost> experts;
  std::map<BoundaryKey, SegmentCost> boundary;
  // The step's end on each rank: grad_allreduce, loss_norm_allreduce (as measured), and the optimizer
  // per parameter of the rank (grad_norm, adamw: ns in SegmentCost::ns per parameter).
  std::map<std::string, SegmentCost> tail;
  std::map<storage::Category, TransferFit> transfers;
  // The run measured the weight passes apart: a ZB-H1 run, or any schedule run with
  // parallel.split_backward (each backward as B then W). Then B and W each take their measured spans,
  // and a schedule that does not split joins them into one backward.
  bool split_backward = false;
  // A backward's compute share that is the input gradient (ZB-H1's B). Where the run did not measure
  // it apart, 0.5: the matmuls' input and weight gradients cost the same FLOPs (the Zero Bubble
  // paper's T_B = T_W); where it did, the measured share of the layers' backward compute (what the
  // notes report; the passes then use the measured spans themselves).
  double input_share = 0.5;
  // Saved activations per token and layer held (analysis_memory's counter over the schedule's peak
  // of held micro-batch chunks); 0 when the run recorded none.
  double activation_bytes_per_token_layer = 0;
  std::vector<std::string> notes;  // what the fit assumed
};

// Fits the cost model to a loaded run. cores: the host's cores for a CPU run (< 0: the run's
// `host.cores` meta, else none). Throws PlanError when the run cannot calibrate a prediction (no
// pipeline passes in it, no complete step, a config the planner cannot read).
// slice_ms: the host scheduler's time slice (< 0: fitted from the run; 0: processor sharing).
CostModel fitCostModel(const storage::Trace& trace, const std::string& path, int cores = -1,
                       double slice_ms = -1);

// The time slices --slice-ms accepts besides 0: shorter ones would make a simulation of many events.
constexpr double kMinSliceMs = 0.1, kMaxSliceMs = 1000;

// The compute a split backward divides between B (input gradient) and W (weight gradients);
// communication and slicing stay in B.
bool splitsBetweenBAndW(storage::Category category);

// The group a transfer's collective spans in a configuration (tp for tensor-parallel all-reduces, dp
// for the gradient all-reduce and DPMoE's all-to-all, the world for the loss-norm all-reduce, 2 for a
// pipeline send/recv).
int groupSize(const std::string& name, storage::Category category, int pp, int tp, int dp);

}  // namespace moescope::planner
