// The fused operations as the operations they stand for: the CPU reference runs these, and the CUDA
// backend where a fused path is switched off or does not apply (engine/cuda_kernel_options.h).
#include "engine/stage_ops.h"

namespace moescope::engine {

void StageOps::residualLayerNorm(Tensor r, Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor z,
                                 Tensor bias, Tensor w, Tensor b) {
  residual(r, x, z, bias);
  layerNorm(out, mean, rstd, r, w, b);
}

void StageOps::ffn(Tensor y, Tensor pre, Tensor act, Tensor x, const Ffn& w, int n, int hidden) {
  linear(pre, x, w.fc_w, w.fc_b, n, C_, hidden);
  gelu(act, pre, static_cast<size_t>(n) * hidden);
  linear(y, act, w.proj_w, w.proj_b, n, hidden, C_);
}

void StageOps::ffnBackward(Tensor dx, const Ffn& g, Tensor dpre, Tensor dy, Tensor x, Tensor pre, Tensor act,
                           const Ffn& w, int n, int hidden) {
  const size_t nh = static_cast<size_t>(n) * hidden;
  const Tensor dact = reserve(dact_, nh, act.type);
  zero(dact, nh);
  linearBackward(dact, g.proj_w, g.proj_b, dy, act, w.proj_w, n, hidden, C_);
  zero(dpre, nh);
  geluBackward(dpre, pre, dact, nh);
  linearBackward(dx, g.fc_w, g.fc_b, dpre, x, w.fc_w, n, C_, hidden);
}

void StageOps::experts(Tensor y, Tensor pre, Tensor act, Tensor x, const std::vector<Ffn>& w,
                       const std::vector<int>& rows) {
  for (size_t e = 0; e < w.size(); ++e) {
    const size_t r = static_cast<size_t>(rows[e]), m = static_cast<size_t>(rows[e + 1]) - r;
    if (m > 0) ffn(y.at(r * C_), pre.at(r * F_), act.at(r * F_), x.at(r * C_), w[e], static_cast<int>(m), F_);
  }
}

void StageOps::expertsBackward(Tensor dx, const std::vector<Ffn>& g, Tensor dpre, Tensor dy, Tensor x,
                               Tensor pre, Tensor act, const std::vector<Ffn>& w,
                               const std::vector<int>& rows) {
  for (size_t e = 0; e < w.size(); ++e) {
    const size_t r = static_cast<size_t>(rows[e]), m = static_cast<size_t>(rows[e + 1]) - r;
    if (m > 0)
      ffnBackward(dx.at(r * C_), g[e], dpre.at(r * F_), dy.at(r * C_), x.at(r * C_), pre.at(r * F_),
                  act.at(r * F_), w[e], static_cast<int>(m), F_);
  }
}

}  // namespace moescope::engine
