// One rank's part of every training step, written once for every backend (ggml's graph/backend split
// and llm.c's one forward/backward, at this project's size). The stage pass owns the layer order, the
// phases, the spans (names, categories, attributes), the collectives (tp all-reduce, DPMoE all-to-all,
// pipeline send/recv, dp gradient all-reduce, loss reductions), the activations and the parameters
// (flat arrays of master weights, gradients, Adam moments, and a compute copy where the backend computes
// in another type), and has a backend's StageOps (stage_ops.h) compute: the CPU reference (cpu_stage.h,
// float, or double for gradient checks) or CUDA (cuda/cuda_stage.h, fp32 or bf16 on one stream).
// Tensor parallelism is Megatron's; PPMoE picks this rank's experts' tokens by index slicing and sums
// their outputs with the tp all-reduce; DPMoE sends them to their experts with all-to-alls over dp.
//
// Design, and what comes next:
// - Only Communicator is used, so an MPI communicator (issue 14) runs the pass as it is. Arrays the
//   model reduces together go as one collective (a MoE layer's bf16 input gradient and fp32 router
//   gradient: one span, one NCCL group).
// - Spans open and close here only, their names in one table (stage_pass.cpp); a backend's settle()
//   ends a span when its work has (the CUDA stream, when host time stands for GPU time).
// - A stage walks chunks: runs of its layer slots, each with where its input comes from and its output
//   goes. Today a stage has one, its contiguous layers. Interleaved 1F1B (issue 19) gives it several
//   chunks of non-adjacent layers from the layout, and the schedule's PipelineOp names the chunk that
//   forward/backward walk; a micro-batch's boundary buffers are per chunk already (ChunkIo).
// - Every backward kernel takes the input gradient and the weight gradients as separate optional
//   arguments: ZB-H1's B pass (issue 19) calls them with the input gradient only and keeps each call's
//   dy per (micro-batch, layer) instead of in the shared scratch; its W pass (phase backward_weight)
//   replays them with the weight gradients only.
// - Every activation is a Buffer reserved here: the bytes a micro-batch holds from its forward to its
//   backward (issue 19's peak activation memory) are known here.
// - Each MoE layer's expert offsets come to the host once per micro-batch (they size the expert
//   products): the tokens kept per expert and dropped per (step, micro-batch, layer) of issue 22 are
//   here; today they are summed into routingStats().
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/backend.h"
#include "engine/stage_ops.h"
#include "engine/stage_parameters.h"
#include "engine/stage_position.h"

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
  StepLosses reduceGradients();  // endStep without the update (gradient checks)

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
                *proj_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr, *fc_w = nullptr, *fc_b = nullptr,
                *fcp_w = nullptr, *fcp_b = nullptr, *router = nullptr;
    std::vector<Expert> experts;  // this rank's, by index
  };
  struct Chunk {
    size_t begin = 0, end = 0;  // layer slots
    bool embeds = false, heads = false;
    int prev = -1, next = -1;  // the stages its input comes from and its output goes to
  };
  struct LayerActs {
    Tensor x;  // the layer's input: the previous layer's output or the chunk's input
    Buffer ln1, ln1_mean, ln1_rstd, qkv, att, o, x2, ln2, ln2_mean, ln2_rstd, pre, act, out;
    Buffer logits, probs, f, choice, keep, order, offsets, slot_of;  // MoE router
    std::vector<int32_t> offsets_host;                               // [E+1]
    // This rank's expert rows, contiguous by local expert (row_begin[le]..row_begin[le+1]), from slot j0.
    int j0 = 0, rows = 0, total = 0;  // total: DPMoE's assignments sent
    std::vector<int> row_begin;
    Buffer xg, preg, actg, yg, returned;
    std::vector<size_t> send_elems, recv_elems;  // DPMoE, per peer
    std::vector<int32_t> recv_counts;            // DPMoE, [peer][local expert]
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

  Tensor reserve(Buffer& b, size_t n) { return ops_->reserve(b, n, act_); }
  Tensor reserve(Buffer& b, size_t n, DType type) { return ops_->reserve(b, n, type); }
  Tensor w(const Param* p) const { return (copy_.data ? copy_ : master_).at(p->offset); }
  Tensor g(const Param* p) const { return grad_.at(p->offset); }
  Slots slots(const LayerActs& a, int j0, int m) const {
    return {a.order, a.slot_of, a.choice, a.probs, j0, m};
  }
  void allReduce(Communicator* c, std::initializer_list<CommBuffer> parts, const SpanName& what,
                 int layer = -1);
  void allToAll(Tensor send, const std::vector<size_t>& sendCounts, Tensor recv,
                const std::vector<size_t>& recvCounts, const SpanName& what, int layer);
  template <class Full>
  void fill(size_t workers, Full full);  // every parameter's shard of full(p), then the compute copy
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
  template <class Key, class Fn>
  void forEachRun(Key key, Fn fn) const;  // fn(begin, count, key) per run of neighbours alike

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
  // Scratch shared by the micro-batches; sums_: squared gradient norm, CE sum, aux sum (F64).
  Buffer y_, z_, dm_, dprobs_, drouter_, dln1_, dlnf_, dout_, dqkv_, dact_, dpre_, dyg_, dxg_, sums_;
  Buffer send_, recv_, dsend_, drecv_, dreturned_, counts_send_, counts_recv_;
  int updates_ = 0;
  RoutingStats routing_;
  // Last, so destroyed first: a backend ends its work (and a failed run's collectives) before the
  // buffers above are freed.
  std::unique_ptr<StageOps> ops_;
};

}  // namespace moescope::engine
