#include "engine/schedule.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace moescope::engine {

std::vector<PipelineOp> gpipeSchedule(int /*stages*/, int /*stage*/, int microbatches) {
  std::vector<PipelineOp> ops;
  for (int m = 0; m < microbatches; ++m) ops.push_back({PipelineOp::Kind::Forward, m});
  for (int m = 0; m < microbatches; ++m) ops.push_back({PipelineOp::Kind::Backward, m});
  return ops;
}

std::vector<PipelineOp> oneFOneBSchedule(int stages, int stage, int microbatches) {
  std::vector<PipelineOp> ops;
  const int warmup = std::min(stages - stage - 1, microbatches);
  int forward = 0, backward = 0;
  for (; forward < warmup; ++forward) ops.push_back({PipelineOp::Kind::Forward, forward});
  while (forward < microbatches) {
    ops.push_back({PipelineOp::Kind::Forward, forward++});
    ops.push_back({PipelineOp::Kind::Backward, backward++});
  }
  while (backward < microbatches) ops.push_back({PipelineOp::Kind::Backward, backward++});
  return ops;
}

std::vector<PipelineOp> pipelineSchedule(std::string_view name, int stages, int stage, int microbatches) {
  if (name == "gpipe") return gpipeSchedule(stages, stage, microbatches);
  if (name == "1f1b") return oneFOneBSchedule(stages, stage, microbatches);
  throw std::invalid_argument("unknown schedule '" + std::string(name) + "'");
}

}  // namespace moescope::engine
