// The CPU reference backend's stage: the stage pass over the operations of engine/cpu/ops.h on host
// arrays. Templated on the scalar type: float for runs, double for gradient checks.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/stage_pass.h"

namespace moescope::engine {

template <class T>
std::unique_ptr<StagePass> makeCpuStage(const RankSetup& setup);

extern template std::unique_ptr<StagePass> makeCpuStage<float>(const RankSetup&);
extern template std::unique_ptr<StagePass> makeCpuStage<double>(const RankSetup&);

// A CPU stage's parameters as host arrays (gradient checks).
template <class T>
struct CpuParam {
  std::string name;
  std::span<T> value, grad;
};
template <class T>
std::vector<CpuParam<T>> cpuParameters(const StagePass& stage) {
  std::vector<CpuParam<T>> out;
  for (const auto& p : stage.parameters()) {
    out.push_back({p.sp.spec.name,
                   {stage.values().as<T>() + p.offset, p.n},
                   {stage.gradients().as<T>() + p.offset, p.n}});
  }
  return out;
}

}  // namespace moescope::engine
