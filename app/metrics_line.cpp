#include "app/metrics_line.h"

#include <nlohmann/json.hpp>

namespace moescope::app {

std::string metricsLine(const engine::StepReport& r) {
  nlohmann::ordered_json j = {{"step", r.step},
                              {"loss", r.losses.loss},
                              {"ce_loss", r.losses.ce},
                              {"aux_loss", r.losses.aux},
                              {"tokens", r.tokens},
                              {"step_ms", r.step_ms},
                              {"tokens_per_s", r.tokens_per_s},
                              {"grad_norm", r.losses.grad_norm}};
  if (r.peak_memory_bytes > 0) j["peak_memory_bytes"] = r.peak_memory_bytes;
  return j.dump() + "\n";
}

}  // namespace moescope::app
