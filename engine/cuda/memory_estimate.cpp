#include "engine/cuda/memory_estimate.h"

#include <algorithm>

#include "engine/cuda/kernel_choice.h"
#include "engine/stage_parameters.h"

namespace moescope::engine::cuda {

MemoryEstimate estimateMemory(const Config& c, const Layout& layout, const RankCoord& coord,
                              const CudaKernelOptions& options) {
  const bool bf16 = c.train.precision == Precision::Bf16;
  const int64_t esize = bf16 ? 2 : 4;
  MemoryEstimate est;
  for (const auto& sp : stageParameters(c, layout, coord)) {
    int64_t n = 1;
    for (int64_t d : shardShape(sp.spec.shape, sp.shard)) n *= d;
    est.parameters += n;
  }
  est.state_bytes = est.parameters * (16 + (bf16 ? 2 : 0));
  const auto& m = c.model;
  const int64_t tp = c.parallel.tp;
  const int64_t N = c.microbatchSize() * m.seq_len, C = m.d_model, F = m.d_ff, E = m.n_experts, K = m.top_k;
  const int64_t epr = layout.expertsPerRank();
  int64_t rows = E > 0 ? N * std::min(K, epr) : 0;
  if (c.dpmoe() && layout.dp() > 1) rows *= layout.dp();
  // Attention: cuDNN and the fused kernels keep each row's log-sum-exp (fp32) and need an fp32 dQ and
  // rowsum(dO ⊙ O) (cuDNN's plan asks a workspace of its own beside them, known only once the plan is
  // built: inside the reserve cuda_backend.cpp keeps); the cuBLASLt path keeps the T x T probabilities
  // and needs room for the scores and their gradients.
  const int64_t heads = c.microbatchSize() * (m.n_heads / tp);
  const CudaKernelOptions k = effectiveKernelOptions(c, options);
  const bool flash = k.attention != AttentionKernel::Cublas;
  const int64_t square = heads * m.seq_len * m.seq_len;
  const int64_t attention_kept = flash ? heads * m.seq_len * 2 : square;
  const int64_t attention_scratch =
      flash ? 2 * N * C / tp + 2 * heads * m.seq_len : 7 * N * C / tp + square * 3;
  int64_t per_mb = 0;  // elements of the compute type
  // ZB-H1 keeps each weight gradient's dy from its B pass to its W pass (engine/stage_pass.h).
  const bool split = pipelineShape(c).schedule == storage::Schedule::ZbH1;
  for (const LayerRange& chunk : layout.chunks(coord.stage)) {
    for (int li = chunk.begin; li < chunk.end; ++li) {
      per_mb += N * C * 5 + N * 4 * C / tp + attention_kept;
      // the dense FFN keeps its pre-activation, and its GELU output unless it is recomputed
      per_mb += m.isMoeLayer(li) ? N * E * 3 + rows * (2 * C + 2 * F) + N * K * C
                                 : (k.keep_gelu_output ? 2 : 1) * N * F / tp;
      if (split)
        per_mb += N * C * 4 + 3 * N * C / tp + (m.isMoeLayer(li) ? N * E + rows * (C + F) : N * F / tp);
    }
  }
  const bool last = coord.stage == layout.pp() - 1;
  if (last) per_mb += N * C + N * m.vocab_size + (split ? N * C : 0);
  // The FFN's pre-activation gradient, which holds the activation gradient first (the CUDA stage's
  // ffnBackward, with and without the DGELU epilogue; a B pass writes the pre-activation gradient into its
  // kept dy, counted above, but the scratch stays reserved for the passes that are not split).
  const int64_t ffn_scratch = std::max(N * F / tp, rows * F);
  int64_t scratch = N * C * 6 + ffn_scratch + 2 * rows * C + attention_scratch;
  if (!k.keep_gelu_output) scratch += N * F / tp;  // the recomputed GELU output, one layer's at a time
  if (last) scratch += N * C;
  est.activation_bytes = (per_mb * c.parallel.microbatches + scratch) * esize;
  return est;
}

}  // namespace moescope::engine::cuda
