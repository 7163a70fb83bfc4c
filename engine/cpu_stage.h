// The CPU reference backend's stage: the stage pass over the operations of engine/cpu/ops.h on host
// arrays. Templated on the scalar type: float for runs, double for gradient checks.
#pragma once

#include <memory>

#include "engine/stage_pass.h"

namespace moescope::engine {

template <class T>
std::unique_ptr<StagePass> makeCpuStage(const RankSetup& setup);

extern template std::unique_ptr<StagePass> makeCpuStage<float>(const RankSetup&);
extern template std::unique_ptr<StagePass> makeCpuStage<double>(const RankSetup&);

}  // namespace moescope::engine
