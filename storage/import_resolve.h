// What each event of one rank's trace means: its category, phase, step, micro-batch, layer and expert,
// from (in order of precedence)
//   1. its own name (the naming rules) and, for collectives, its process group and the layout;
//      a CUDA launch call takes the category of the kernel it launched when the kernel has one
//      (an NCCL kernel's group), so that kernels are drawn and counted in it;
//   2. the ranges it is nested in on its own thread (an aten op inside "linear_fc1" is compute.ffn);
//   3. for step, phase and micro-batch, the ranges of the same rank that contain it in time on any
//      thread: the step marker (ProfilerStep#N) and the passes (forward_step, backward_step) run on
//      the main thread while autograd runs the backward on a thread of its own;
//   4. micro-batches of passes whose names carry none, from the schedule (import_schedule.h).
// What nothing gives a category is `user`. GPU records take everything from the call that launched
// them, found by the CUDA correlation id and, where that is missing, by the ac2g flow.
#pragma once

#include <cstdint>
#include <limits>
#include <unordered_map>
#include <vector>

#include "storage/import_kineto.h"
#include "storage/import_layout.h"
#include "storage/rules.h"
#include "storage/trace_model.h"

namespace moescope::storage {

inline constexpr uint32_t kNoEvent = std::numeric_limits<uint32_t>::max();

struct ResolvedFields {
  int32_t step = kNone, microbatch = kNone, layer = kNone, expert = kNone;
  Category category = Category::User;
  Phase phase = Phase::None;
  bool operator==(const ResolvedFields&) const = default;
};

struct StepWindow {
  int32_t step = 0;
  int64_t start = 0, end = 0;  // on the run clock
  bool operator==(const StepWindow&) const = default;
};

struct ResolveCounts {
  int64_t linked_by_correlation = 0, linked_by_flow = 0, unlinked = 0;
  int64_t passes = 0;           // forward and backward passes found
  int64_t numbered_passes = 0;  // of which micro-batches came from the schedule
  int64_t user_spans = 0;       // spans nothing gave a category
  int64_t collectives = 0;      // events with collective fields
  bool operator==(const ResolveCounts&) const = default;
};

struct RankResolution {
  int64_t base_ns = 0;                 // added to every event's ts: the file's baseTimeNanoseconds
  LargeVector<ResolvedFields> fields;  // per event
  LargeVector<uint32_t> launch;        // per event: a GPU record's launching call; kNoEvent otherwise
  std::unordered_map<uint32_t, int64_t>
      bytes;                         // per event with a payload: collectives, copies, their launches
  std::vector<StepWindow> steps;     // the step markers' extents, by step
  int32_t microbatches = 0;          // 1 + the largest micro-batch seen
  int32_t stage_from_names = kNone;  // a stage some name carried (a "stage" capture)
  int32_t device = kNone;            // the GPU most of the rank's records ran on
  ResolveCounts counts;
};

struct ResolveContext {
  const RuleSet& rules;
  const NameTable& names;
  std::vector<NameFields>& nameCache;  // by name id, filled as names are met (shared by all ranks)
  std::vector<bool>& nameCached;
  ParallelLayout layout;
  Schedule schedule = Schedule::OneFOneB;
};

RankResolution resolveRank(const KinetoFile& file, int32_t stage, const ResolveContext& context);

// The bytes a collective moved: the larger of its input and output messages times the element size.
int64_t collectiveBytes(const KinetoCollective& c);

}  // namespace moescope::storage
