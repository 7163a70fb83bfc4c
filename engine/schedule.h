// Pipeline schedules: the order in which one stage runs the passes of a step's micro-batches, and what
// each pass waits for on the other stages. Pure code (no backend, no I/O): the trainer walks a stage's
// list, `train --dry-run` prints it, and a discrete-event simulation (schedule_timing.h, the planner)
// walks every stage's list with the dependencies below.
//
// A pass is a forward (F), a backward (B) or a weight-gradient pass (W) of one micro-batch through one
// of the stage's model chunks. Only interleaved 1F1B gives a stage several chunks: the model's layers
// are cut into pp x v chunks of consecutive layers, global chunk g on stage g mod pp, the stage's local
// chunk g / pp (Megatron-Core's model_chunk_id). ZB-H1 splits a backward into the input gradient
// (BackwardInput, B) and the weight gradient (BackwardWeight, W); elsewhere a backward computes both,
// unless the shape asks for split_backward: then each backward is its B immediately followed by its W,
// the order and the numbers otherwise unchanged, so a 1F1B run measures what B and W cost apart (the
// planner's ZB-H1 predictions need the split: docs/PLANNER.md).
//
// Sources of each order (docs/SCHEDULES.md has them with their bubble shares):
// - gpipe: Huang et al., "GPipe" (2019): every forward, then every backward.
// - 1f1b: Narayanan et al., "PipeDream-Flush" (2021), Megatron-LM's forward_backward_pipelining_without_
//   interleaving: min(p - s - 1, m) warm-up forwards, then one forward and one backward in turn.
// - interleaved: Megatron-Core's forward_backward_pipelining_with_interleaving with its default
//   microbatch_group_size_per_vp_stage = p: forwards walk the table of (micro-batch, chunk) pairs in
//   groups of p micro-batches, chunk by chunk; backwards walk the same table with the chunk mirrored
//   (v - 1 - chunk); (p - s - 1) x 2 + (v - 1) x p warm-up forwards, then a forward and a backward in
//   turn, then the remaining backwards.
// - zb-h1: Qi et al., "Zero Bubble Pipeline Parallelism" (2023), ZB-H1 as DeepSpeed's
//   ZeroBubbleH1Pipeline orders it with exact semantics: 1F1B's warm-up, then on stage s the first s
//   backwards without their W, then F B W, then B W, then the deferred W passes, each W the oldest
//   micro-batch still waiting (so weight gradients add up in micro-batch order, as in every schedule).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/trace_model.h"

namespace moescope::engine {

using storage::Schedule;

struct PipelineOp {
  enum class Kind : uint8_t {
    Forward,
    Backward,        // input and weight gradients together
    BackwardInput,   // the input gradient alone (B of a split backward)
    BackwardWeight,  // the weight gradients of an earlier BackwardInput (W)
  };
  Kind kind = Kind::Forward;
  int microbatch = 0;
  int chunk = 0;  // the stage's model chunk, 0..virtual_stages-1
  bool operator==(const PipelineOp&) const = default;
};

// What every stage's schedule is made from.
struct PipelineShape {
  Schedule schedule = Schedule::OneFOneB;
  int stages = 1;
  int microbatches = 1;
  int virtual_stages = 1;  // model chunks per stage; > 1 only with Schedule::Interleaved
  bool split_backward =
      false;  // every Backward as BackwardInput then BackwardWeight (parallel.split_backward)
  bool operator==(const PipelineShape&) const = default;
};

// The rules a shape must follow over a model of `layers` layers (MODEL.md): at least one stage,
// micro-batch and chunk; virtual_stages > 1 only with interleaved, and then pp > 1; for interleaved,
// layers % (pp x virtual_stages) == 0 and microbatches % pp == 0. Returns one line naming the first
// rule broken, or "" when the shape is valid. The config's validation and the planner both ask here.
std::string scheduleProblem(const PipelineShape& shape, int64_t layers);

// The passes of stage `stage` (0-based) in the order it runs them. The shape must be valid
// (scheduleProblem); throws std::invalid_argument otherwise.
std::vector<PipelineOp> stageSchedule(const PipelineShape& shape, int stage);

// A pass of a stage.
struct PassRef {
  int stage = 0;
  PipelineOp op;
  bool operator==(const PassRef&) const = default;
};

// The passes `op` on `stage` needs the results of (the data it reads): a forward, the previous chunk's
// forward of the micro-batch (on the previous stage, or the last stage for a chunk > 0 on stage 0); a
// backward, the next chunk's backward of the same kind (or the micro-batch's forward on the chunk that
// computes the loss); a weight pass, its BackwardInput. Empty for the first chunk's first forward.
// Some are on the same stage, where the stage's order already puts them first.
std::vector<PassRef> passDependencies(const PipelineShape& shape, int stage, const PipelineOp& op);

// Whether a shape's schedule computes the weight gradients in passes of their own.
bool splitsBackward(const PipelineShape& shape);
// The model chunk a stage's chunk is (chunk x stages + stage), and back.
inline int globalChunk(const PipelineShape& shape, int stage, int chunk) {
  return chunk * shape.stages + stage;
}

// "F3", "B0", "W2", or with several chunks "F3.1" (micro-batch 3 of chunk 1), as the GUI labels them.
std::string passName(const PipelineOp& op, int virtual_stages);
// One line per stage: "stage 0: F0 F1 F2 F3 B0 ...".
std::string formatSchedule(const PipelineShape& shape);

}  // namespace moescope::engine
