// The sizes one stage executor works with, from the config and its place in the layout: shared by the
// CPU and CUDA executors. Suffix l: this tensor-parallel rank's share.
#pragma once

#include "engine/backend.h"

namespace moescope::engine {

class StageShape {
 protected:
  explicit StageShape(const RankSetup& setup) {
    const auto& m = setup.config->model;
    const int tp = static_cast<int>(setup.config->parallel.tp);
    T_ = static_cast<int>(m.seq_len);
    B_ = static_cast<int>(setup.config->microbatchSize());
    N_ = B_ * T_;
    C_ = static_cast<int>(m.d_model);
    Cl_ = C_ / tp;
    NHl_ = static_cast<int>(m.n_heads) / tp;
    D_ = static_cast<int>(m.headSize());
    F_ = static_cast<int>(m.d_ff);
    Fl_ = F_ / tp;
    E_ = static_cast<int>(m.n_experts);
    K_ = static_cast<int>(m.top_k);
    V_ = static_cast<int>(m.vocab_size);
    first_ = setup.coord.stage == 0;
    last_ = setup.coord.stage == setup.layout->pp() - 1;
    dispatch_ = setup.config->dpmoe() && setup.layout->dp() > 1;
  }

  int N_ = 0, C_ = 0, Cl_ = 0, NHl_ = 0, D_ = 0, Fl_ = 0, F_ = 0, E_ = 0, K_ = 0, V_ = 0, T_ = 0, B_ = 0;
  bool first_ = false, last_ = false, dispatch_ = false;  // first / last pipeline stage; DPMoE all-to-all
};

}  // namespace moescope::engine
