// The CPU reference backend's StageExecutor: one rank's shard of the model of MODEL.md, its forward and
// written-out backward pass over micro-batches, tensor parallelism (Megatron column/row parallel),
// PPMoE (local experts by index slicing, one all-reduce over the tp group), DPMoE (all-to-all dispatch
// and return over the dp group), the gradient all-reduce, clipping and AdamW. Templated on the scalar
// type: float for runs, double for gradient checks.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/parameters.h"
#include "engine/stage_position.h"
#include "engine/stage_shape.h"

namespace moescope::engine {

template <class T>
class CpuStage final : public StageExecutor, StagePosition, StageShape {
 public:
  explicit CpuStage(const RankSetup& setup);

  void initialize(uint64_t seed) override;
  void loadWeights(const ModelWeights& full) override;
  void storeWeights(ModelWeights& full) const override;
  void setRecorder(tracer::TrackRecorder* recorder) override { s_.recorder = recorder; }
  void beginStep(int step) override;
  void forward(int microbatch) override;
  void backward(int microbatch) override;
  StepLosses endStep() override;
  RoutingStats routingStats() const override { return routing_; }

  // The gradient reduction and losses of endStep without the update (gradient checks).
  StepLosses reduceGradients();

  struct Param {
    std::string name;
    ParamSpec spec;
    std::vector<int64_t> full_shape;
    Shard shard;
    std::vector<T> value, grad, m, v;
    bool decay = false;
    bool tp_unique = false;  // not replicated over the tp group (a shard, or a PPMoE expert)
    bool dp_unique = false;  // not replicated over the dp group (a DPMoE expert): no dp all-reduce
  };
  std::deque<Param>& parameters() { return params_; }

 private:
  struct Expert {
    int index = 0;
    Param *fc_w = nullptr, *fc_b = nullptr, *proj_w = nullptr, *proj_b = nullptr;
  };
  struct Layer {
    int index = 0;
    bool moe = false;
    Param *ln1_w = nullptr, *ln1_b = nullptr, *attn_w = nullptr, *attn_b = nullptr, *proj_w = nullptr,
          *proj_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
    Param *fc_w = nullptr, *fc_b = nullptr, *fcp_w = nullptr, *fcp_b = nullptr;  // dense
    Param* router = nullptr;                                                     // MoE
    std::vector<Expert> experts;                                                 // this rank's experts
  };
  struct ExpertActs {
    std::vector<int32_t> rows;  // PPMoE: the tokens routed to this expert
    int m = 0;
    std::vector<T> x, pre, act, y;  // [m,C], [m,F], [m,F], [m,C]
  };
  struct LayerActs {
    std::vector<T> x, ln1, ln1_mean, ln1_rstd, qkv, att, o, x2, ln2, ln2_mean, ln2_rstd;
    std::vector<T> pre, act;  // dense FFN
    std::vector<T> probs, f;  // MoE router
    std::vector<int32_t> choice;
    std::vector<uint8_t> keep;
    std::vector<ExpertActs> experts;  // local experts
    // DPMoE dispatch state: rows of every expert, assignments per expert and per peer, the returned
    // outputs in send layout, the received counts.
    std::vector<std::vector<int32_t>> rows;
    std::vector<size_t> send_rows, recv_rows;  // per peer
    std::vector<int32_t> recv_counts;          // [peer][local expert]
    std::vector<T> returned;                   // [assignments, C], send layout
  };
  struct MicroActs {
    std::vector<int32_t> tokens, targets;
    std::vector<LayerActs> layers;
    std::vector<T> out, lnf, lnf_mean, lnf_rstd, logits;
  };

  Param* addParam(const ParamSpec& spec, Shard shard, bool tp_unique, bool dp_unique);
  void loadBatch(MicroActs& acts, int microbatch);

  void layerForward(const Layer& layer, LayerActs& a, const T* x, T* out);
  void layerBackward(const Layer& layer, LayerActs& a, T* dx);  // dx: grad of output in, of input out
  void moeForwardLocal(const Layer& layer, LayerActs& a, T* moe_out);
  void moeBackwardLocal(const Layer& layer, LayerActs& a, const T* dout, T* dm, T* dprobs);
  void moeForwardDispatch(const Layer& layer, LayerActs& a, T* moe_out);
  void moeBackwardDispatch(const Layer& layer, LayerActs& a, const T* dout, T* dm, T* dprobs);
  // DPMoE: elements per peer of the dispatch (send) and of what arrives (recv); returns the rows that arrive.
  size_t peerElements(const LayerActs& a, std::vector<size_t>& send, std::vector<size_t>& recv) const;
  // Local expert le's rows between the arrival layout [peer][local expert][row] and its own contiguous rows.
  void peerToExpert(const LayerActs& a, const T* peer_rows, int le, T* expert_rows) const;
  void expertToPeer(const LayerActs& a, const T* expert_rows, int le, T* peer_rows) const;
  void expertForward(const Expert& e, ExpertActs& x);
  void expertBackward(const Expert& e, ExpertActs& x, const T* dy, T* dx);

  RankSetup s_;
  const Config& c_;
  std::deque<Param> params_;
  Param *wte_ = nullptr, *wpe_ = nullptr, *lnf_w_ = nullptr, *lnf_b_ = nullptr, *lm_head_ = nullptr;
  std::vector<Layer> layers_;
  std::vector<MicroActs> acts_;
  int updates_ = 0;
  double ce_sum_ = 0, aux_sum_ = 0;
  RoutingStats routing_;
  std::vector<T> scratch_;  // reduction buffers
};

extern template class CpuStage<float>;
extern template class CpuStage<double>;

}  // namespace moescope::engine
