// The fused paths of issue 18 beside what they replace (cuda_fused_bench.cu), bf16 only.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda_bench_util.cuh"

namespace moescope::bench {

void benchFused(Bench& bench, Arena& arena, cudaStream_t stream);

}  // namespace moescope::bench
