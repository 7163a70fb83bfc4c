// A cost model for tests of the simulation: a dense run of `pp` stages over `layers` layers, a
// micro-batch of one token, each layer's forward and backward one ffn span of the given nanoseconds, and
// free pipeline transfers.
#pragma once

#include <cstdint>

#include "planner/cost_model.h"
#include "storage/trace_model.h"

namespace moescope::planner::test {

inline CostModel equalLayersModel(int pp, int64_t layers, int64_t globalBatch, double forwardNs,
                                  double backwardNs) {
  using storage::Category;
  using storage::Phase;
  CostModel m;
  m.run.layout = "dense";
  m.run.pp = pp;
  m.model.layers = layers;
  m.model.experts = 0;
  m.model.layout = "dense";
  m.model.global_batch = globalBatch;
  m.model.seq_len = 1;
  m.tokens_per_microbatch = 1;
  for (int64_t l = 0; l < layers; ++l) {
    m.layers[{l, Phase::Forward}] = {{{"ffn", Category::ComputeFfn, storage::kNone, forwardNs}, {}, {}}};
    m.layers[{l, Phase::Backward}] = {{{"ffn", Category::ComputeFfn, storage::kNone, backwardNs}, {}, {}}};
  }
  for (const char* name : {"recv_activation", "send_activation"})
    m.boundary[{name, Phase::Forward}] = {name, Category::CommPpSendrecv, storage::kNone, 0};
  for (const char* name : {"recv_grad", "send_grad"})
    m.boundary[{name, Phase::Backward}] = {name, Category::CommPpSendrecv, storage::kNone, 0};
  return m;
}

}  // namespace moescope::planner::test
