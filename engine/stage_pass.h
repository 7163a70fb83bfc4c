// One rank's part of every training step, written once for every backend: the stage pass. It owns the
// layer order, the phases, the spans (names, categories, attributes), the collectives (tp all-reduce,
// DPMoE all-to-all, pipeline send/recv, dp all-reduce, loss reductions), the activations and the
// parameters (flat arrays: master weights, gradients, Adam moments, and a compute copy where the backend
// computes in another type), and says what to compute through StageOps (engine/stage_ops.h), which the
// CPU backend (cpu_stage.h, float or double) and the CUDA backend (cuda/cuda_stage.h, fp32 or bf16 on
// one stream) implement: ggml's graph/backend split and llm.c's one forward/backward, at this size.
// Tensor parallelism is Megatron's (column/row parallel attention and FFN); PPMoE picks this rank's
// experts' tokens by index slicing and combines them with the tp all-reduce; DPMoE sends them to the
// experts' owners with all-to-alls over the dp group.
//
// Design, and what comes next:
// - The pass talks only to Communicator (engine/communicator.h), so an MPI communicator (issue 14) runs
//   it unchanged. A call moves several arrays as one collective where the model reduces them together
//   (a MoE layer's bf16 activation gradient and fp32 router gradient: one span, one NCCL group).
// - Spans are opened and closed here only; a backend's settle() lets a span end when its work has
//   (the CUDA stream, when host time stands for GPU time). Span names are in one table (stage_pass.cpp).
// - A stage walks a list of chunks, each a run of its layer slots with where its input comes from and
//   its output goes. Today a stage has one chunk (its contiguous layers; the first stage embeds, the last
//   computes the loss). Interleaved 1F1B (issue 19) gives a stage several chunks of non-adjacent layers:
//   the layout lists them, forward/backward take the chunk index from the schedule's PipelineOp, and the
//   per-micro-batch boundary buffers (ChunkIo) are already per chunk.
// - Backward is written layer by layer as input-gradient work followed, inside the same spans, by
//   weight-gradient work (every linearBackward, layerNormBackward and embeddingBackward takes dx and
//   dw/db separately). ZB-H1's split (issue 19, phase backward_weight) runs the calls with dx only in B,
//   keeps each call's dy in per-(micro-batch, layer) buffers instead of the shared scratch, and replays
//   the calls with dw/db only in W.
// - Peak activation memory (issue 19): every activation is a Buffer reserved here, so the bytes a
//   micro-batch holds between its forward and backward are known to the pass.
// - Routing: the pass reads each MoE layer's expert offsets once per micro-batch (it sizes the expert
//   products with them), so tokens kept per expert and dropped per (step, micro-batch, layer) are here
//   for issue 22; today they are summed into routingStats().
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/backend.h"
#include "engine/stage_ops.h"
#include "engine/stage_parameters.h"
#include "engine/stage_position.h"
#include "engine/stage_shape.h"

namespace moescope::engine {

class StagePass final : public StageExecutor, StagePosition, StageShape {
 public:
  StagePass(const RankSetup& setup, std::unique_ptr<StageOps> ops);

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

  // This rank's parameters, each at offset in the flat arrays of values and gradients (acc type).
  struct Param {
    StageParam sp;
    size_t offset = 0, n = 0;
  };
  const std::vector<Param>& parameters() const { return params_; }
  Tensor values() const { return master_; }
  Tensor gradients() const { return grad_; }

 private:
  class Span;
  struct Expert {
    int index = 0;
    const Param *fc_w = nullptr, *fc_b = nullptr, *proj_w = nullptr, *proj_b = nullptr;
  };
  struct Layer {
    int index = 0;
    bool moe = false;
    const Param *ln1_w = nullptr, *ln1_b = nullptr, *attn_w = nullptr, *attn_b = nullptr, *proj_w = nullptr,
                *proj_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
    const Param *fc_w = nullptr, *fc_b = nullptr, *fcp_w = nullptr, *fcp_b = nullptr;
    const Param* router = nullptr;
    std::vector<Expert> experts;  // this rank's, by index
  };
  struct Chunk {
    size_t begin = 0, end = 0;  // layer slots
    bool embeds = false, heads = false;
    int prev = -1, next = -1;  // stages the input comes from and the output goes to
  };
  struct LayerActs {
    Tensor x;  // the layer's input: the previous layer's output or the chunk's input
    Buffer ln1, ln1_mean, ln1_rstd, qkv, att, o, x2, ln2, ln2_mean, ln2_rstd, pre, act, out;
    Buffer logits, probs, f, choice, keep, order, offsets, slot_of;  // MoE router
    std::vector<int32_t> offsets_host;                               // [E+1]
    // This rank's expert rows, contiguous by local expert: row_begin[le]..row_begin[le+1], from slot j0.
    int j0 = 0, rows = 0;
    std::vector<int> row_begin;
    Buffer xg, preg, actg, yg;
    // DPMoE: assignments sent, elements per peer each way, received counts [peer][local expert].
    int total = 0;
    std::vector<size_t> send_elems, recv_elems;
    std::vector<int32_t> recv_counts;
    Buffer returned;
  };
  struct ChunkIo {
    Buffer input, dx;
    Tensor out;
  };
  struct MicroActs {
    std::vector<int32_t> tokens_host, targets_host;
    Buffer tokens, targets, lnf, lnf_mean, lnf_rstd, logits;
    std::vector<ChunkIo> io;
    std::vector<LayerActs> layers;
  };

  Tensor reserve(Buffer& b, size_t n) { return ops_->reserve(b, n, ops_->act()); }
  Tensor reserve(Buffer& b, size_t n, DType type) { return ops_->reserve(b, n, type); }
  Tensor w(const Param* p) const { return (copy_.data ? copy_ : master_).at(p->offset); }
  Tensor g(const Param* p) const { return grad_.at(p->offset); }
  Slots slots(const LayerActs& a, int j0, int m) const {
    return {a.order, a.slot_of, a.choice, a.probs, j0, m};
  }
  void allReduce(Communicator* c, std::initializer_list<CommBuffer> parts, std::string_view name,
                 tracer::Category category, int layer = -1);
  void allToAll(Tensor send, const std::vector<size_t>& sendCounts, Tensor recv,
                const std::vector<size_t>& recvCounts, std::string_view name, int layer);
  void upload(const Param& p, const std::vector<float>& local);
  void refreshComputeCopy();
  void loadBatch(MicroActs& a, int mb);

  void forward(const Chunk& chunk, ChunkIo& io, MicroActs& a);
  void backward(const Chunk& chunk, ChunkIo& io, MicroActs& a);
  void layerForward(const Layer& L, LayerActs& a, Tensor x);
  void layerBackward(const Layer& L, LayerActs& a, Tensor dx);
  void routerForward(const Layer& L, LayerActs& a);
  void moeForwardLocal(const Layer& L, LayerActs& a);
  void moeForwardDispatch(const Layer& L, LayerActs& a);
  void moeBackwardLocal(const Layer& L, LayerActs& a, Tensor dout);
  void moeBackwardDispatch(const Layer& L, LayerActs& a, Tensor dout);
  void expertForward(const Layer& L, LayerActs& a, size_t le);
  void expertBackward(const Layer& L, LayerActs& a, size_t le);
  // DPMoE: rows between the arrival layout [peer][local expert] and the experts' [local expert][peer].
  void permute(const LayerActs& a, Tensor experts, Tensor received, bool toExperts);
  void reduce();
  StepLosses losses();
  // fn(begin, count, value) for each run of neighbouring parameters with the same key(p).
  template <class Key, class Fn>
  void forEachRun(Key key, Fn fn) const;

  RankSetup s_;
  const Config& c_;
  DType act_, acc_;
  int epr_ = 0, peers_ = 1;
  size_t max_rows_ = 0;  // this rank's expert rows of one layer, at most
  std::vector<Param> params_;
  size_t total_ = 0, dp_count_ = 0;  // flat sizes: all parameters, and the dp-replicated prefix
  Buffer master_, grad_, m_, v_, copy_;
  const Param *wte_ = nullptr, *wpe_ = nullptr, *lnf_w_ = nullptr, *lnf_b_ = nullptr, *lm_head_ = nullptr;
  std::vector<Layer> layers_;
  std::vector<Chunk> chunks_;
  std::vector<MicroActs> acts_;
  // Scratch shared by the micro-batches.
  Buffer y_, z_, dm_, dprobs_, drouter_, dln1_, dlnf_, dout_, dqkv_, dact_, dpre_, dyg_, dxg_;
  Buffer send_, recv_, dsend_, drecv_, dreturned_, counts_send_, counts_recv_;
  Buffer sums_;  // squared gradient norm, CE sum, aux sum (F64)
  int updates_ = 0;
  RoutingStats routing_;
  // Last: destroyed first, so a backend ends its work (and a failed run's collectives) before the
  // buffers above are freed.
  std::unique_ptr<StageOps> ops_;
};

}  // namespace moescope::engine
