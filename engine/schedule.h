// Pipeline schedules: the order in which one stage runs the forward and backward passes of a step's
// micro-batches. Backend-independent; the trainer walks the list.
#pragma once

#include <string_view>
#include <vector>

namespace moescope::engine {

struct PipelineOp {
  enum class Kind { Forward, Backward };
  Kind kind = Kind::Forward;
  int microbatch = 0;
  bool operator==(const PipelineOp&) const = default;
};

// gpipe: every forward, then every backward, in micro-batch order.
std::vector<PipelineOp> gpipeSchedule(int stages, int stage, int microbatches);
// 1f1b (PipeDream-flush): min(p - s - 1, m) warm-up forwards, then one forward and one backward in
// turn, then the remaining backwards.
std::vector<PipelineOp> oneFOneBSchedule(int stages, int stage, int microbatches);
// By name: "gpipe" or "1f1b".
std::vector<PipelineOp> pipelineSchedule(std::string_view name, int stages, int stage, int microbatches);

}  // namespace moescope::engine
