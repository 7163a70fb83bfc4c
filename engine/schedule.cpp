#include "engine/schedule.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace moescope::engine {

namespace {

using Kind = PipelineOp::Kind;

std::vector<PipelineOp> gpipe(int microbatches) {
  std::vector<PipelineOp> ops;
  for (int m = 0; m < microbatches; ++m) ops.push_back({Kind::Forward, m});
  for (int m = 0; m < microbatches; ++m) ops.push_back({Kind::Backward, m});
  return ops;
}

std::vector<PipelineOp> oneFOneB(int stages, int stage, int microbatches) {
  std::vector<PipelineOp> ops;
  const int warmup = std::min(stages - stage - 1, microbatches);
  int forward = 0, backward = 0;
  for (; forward < warmup; ++forward) ops.push_back({Kind::Forward, forward});
  while (forward < microbatches) {
    ops.push_back({Kind::Forward, forward++});
    ops.push_back({Kind::Backward, backward++});
  }
  while (backward < microbatches) ops.push_back({Kind::Backward, backward++});
  return ops;
}

// Megatron-Core's schedule table with groups of p micro-batches (microbatch_group_size_per_vp_stage's
// default): the k-th forward of every stage is micro-batch table[k].first of chunk table[k].second; the
// k-th backward the same micro-batch of chunk v - 1 - table[k].second.
std::vector<PipelineOp> interleaved(int stages, int stage, int microbatches, int chunks) {
  const int total = microbatches * chunks;
  std::vector<std::pair<int, int>> table;
  for (int first = 0; first < microbatches; first += stages) {
    const int last = std::min(first + stages, microbatches);
    for (int c = 0; c < chunks; ++c)
      for (int m = first; m < last; ++m) table.emplace_back(m, c);
  }
  const int warmup = std::min((stages - stage - 1) * 2 + (chunks - 1) * stages, total);
  auto forward = [&](int k) { return PipelineOp{Kind::Forward, table[k].first, table[k].second}; };
  auto backward = [&](int k) {
    return PipelineOp{Kind::Backward, table[k].first, chunks - 1 - table[k].second};
  };
  std::vector<PipelineOp> ops;
  for (int k = 0; k < warmup; ++k) ops.push_back(forward(k));
  for (int k = 0; k < total - warmup; ++k) {
    ops.push_back(forward(warmup + k));
    ops.push_back(backward(k));
  }
  for (int k = total - warmup; k < total; ++k) ops.push_back(backward(k));
  return ops;
}

// ZB-H1: 1F1B's order with every backward split. Stage s keeps its first s weight passes back, so the
// later stages, which 1F1B leaves idle while the gradients come down, fill that time with W passes;
// the stage then never has more than p micro-batches between forward and weight pass (1F1B's peak).
std::vector<PipelineOp> zbH1(int stages, int stage, int microbatches) {
  std::vector<PipelineOp> ops;
  int f = 0, b = 0, w = 0;
  const int warmup = std::min(stages - stage - 1, microbatches);
  for (; f < warmup; ++f) ops.push_back({Kind::Forward, f});
  for (int i = 0; i < stage && f < microbatches; ++i) {
    ops.push_back({Kind::Forward, f++});
    ops.push_back({Kind::BackwardInput, b++});
  }
  while (f < microbatches) {
    ops.push_back({Kind::Forward, f++});
    ops.push_back({Kind::BackwardInput, b++});
    ops.push_back({Kind::BackwardWeight, w++});
  }
  while (b < microbatches) {
    ops.push_back({Kind::BackwardInput, b++});
    ops.push_back({Kind::BackwardWeight, w++});
  }
  while (w < microbatches) ops.push_back({Kind::BackwardWeight, w++});
  return ops;
}

}  // namespace

bool splitsBackward(const PipelineShape& s) {
  return s.schedule == Schedule::ZbH1 || s.split_backward;
}

std::string scheduleProblem(const PipelineShape& s, int64_t layers) {
  const std::string name(storage::scheduleName(s.schedule));
  if (s.stages < 1) return "parallel.pp must be >= 1, got " + std::to_string(s.stages);
  if (s.microbatches < 1) return "parallel.microbatches must be >= 1, got " + std::to_string(s.microbatches);
  if (s.virtual_stages < 1)
    return "parallel.virtual_stages must be >= 1, got " + std::to_string(s.virtual_stages);
  if (s.schedule != Schedule::Interleaved) {
    if (s.virtual_stages > 1)
      return "parallel.virtual_stages = " + std::to_string(s.virtual_stages) +
             " needs schedule \"interleaved\", got \"" + name + "\"";
    return "";
  }
  if (s.virtual_stages > 1 && s.stages < 2)
    return "parallel.virtual_stages = " + std::to_string(s.virtual_stages) + " needs pp >= 2, got pp = 1";
  const int64_t chunks = static_cast<int64_t>(s.stages) * s.virtual_stages;
  if (layers % chunks != 0)
    return "schedule \"interleaved\": model.n_layers (" + std::to_string(layers) +
           ") is not divisible into pp x virtual_stages (" + std::to_string(s.stages) + " x " +
           std::to_string(s.virtual_stages) + ") chunks";
  if (s.microbatches % s.stages != 0)
    return "schedule \"interleaved\": parallel.microbatches (" + std::to_string(s.microbatches) +
           ") is not a multiple of pp (" + std::to_string(s.stages) + ")";
  return "";
}

std::vector<PipelineOp> stageSchedule(const PipelineShape& s, int stage) {
  if (stage < 0 || stage >= s.stages)
    throw std::invalid_argument("schedule: stage " + std::to_string(stage) + " of " +
                                std::to_string(s.stages));
  // A shape is checked against the model's layers elsewhere; every chunk count divides some model.
  if (const std::string problem = scheduleProblem(s, int64_t{s.stages} * s.virtual_stages); !problem.empty())
    throw std::invalid_argument("schedule: " + problem);
  const std::vector<PipelineOp> ops = [&] {
    switch (s.schedule) {
      case Schedule::GPipe:
        return gpipe(s.microbatches);
      case Schedule::OneFOneB:
        return oneFOneB(s.stages, stage, s.microbatches);
      case Schedule::Interleaved:
        return interleaved(s.stages, stage, s.microbatches, s.virtual_stages);
      case Schedule::ZbH1:
        return zbH1(s.stages, stage, s.microbatches);
    }
    throw std::invalid_argument("schedule: unknown schedule " + std::to_string(static_cast<int>(s.schedule)));
  }();
  if (!s.split_backward) return ops;
  std::vector<PipelineOp> split;
  for (const PipelineOp& op : ops) {
    if (op.kind != Kind::Backward) {
      split.push_back(op);
      continue;
    }
    split.push_back({Kind::BackwardInput, op.microbatch, op.chunk});
    split.push_back({Kind::BackwardWeight, op.microbatch, op.chunk});
  }
  return split;
}

std::vector<PassRef> passDependencies(const PipelineShape& s, int stage, const PipelineOp& op) {
  const int chunks = s.stages * s.virtual_stages;
  const int g = globalChunk(s, stage, op.chunk);
  auto at = [&](int global, Kind kind) {
    return PassRef{global % s.stages, {kind, op.microbatch, global / s.stages}};
  };
  switch (op.kind) {
    case Kind::Forward:
      if (g == 0) return {};
      return {at(g - 1, Kind::Forward)};
    case Kind::Backward:
    case Kind::BackwardInput:
      if (g == chunks - 1) return {at(g, Kind::Forward)};
      return {at(g + 1, op.kind)};
    case Kind::BackwardWeight:
      return {at(g, Kind::BackwardInput)};
  }
  return {};
}

std::string passName(const PipelineOp& op, int virtual_stages) {
  std::string s(1, op.kind == Kind::Forward ? 'F' : op.kind == Kind::BackwardWeight ? 'W' : 'B');
  s += std::to_string(op.microbatch);
  if (virtual_stages > 1) {
    s += '.';
    s += std::to_string(op.chunk);
  }
  return s;
}

std::string formatSchedule(const PipelineShape& s) {
  std::string out;
  for (int stage = 0; stage < s.stages; ++stage) {
    out += "stage " + std::to_string(stage) + ":";
    for (const PipelineOp& op : stageSchedule(s, stage)) {
      out += ' ';
      out += passName(op, s.virtual_stages);
    }
    out += "\n";
  }
  return out;
}

}  // namespace moescope::engine
