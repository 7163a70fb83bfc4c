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
//   goes (Layout::chunks). A stage has one, its contiguous layers, except under interleaved 1F1B, where
//   chunk c is model chunk c x pp + stage: its input comes from the previous model chunk's stage (the
//   last stage, for stage 0's chunks after the first) and its output goes to the next one's. The
//   schedule's PipelineOp names the chunk a pass walks; a micro-batch's boundary buffers are per chunk
//   (ChunkIo), and its spans carry the chunk (on a stage of several).
// - Every backward kernel takes the input gradient and the weight gradients as separate optional
//   arguments. ZB-H1's B pass (PipelineOp::Kind::BackwardInput) calls them with the input gradient
//   only and keeps each weight gradient's dy per (micro-batch, layer) (LayerActs' w_* buffers) instead of
//   in the shared scratch; its W pass (BackwardWeight, phase backward_weight) computes the weight
//   gradients from them. Weight gradients add up in micro-batch order either way, so a split backward
//   changes no number.
// - Every activation is a Buffer reserved here: the bytes a micro-batch holds in a chunk from its
//   forward to its last backward pass there are summed from them, and their peak over the step is the
//   rank's peak activation memory (peakActivationBytes).
// - Each MoE layer's expert offsets come to the host once per micro-batch (they size the expert
//   products): the tokens kept per expert and dropped per (step, micro-batch, layer) are taken from
//   them into routingStats() (routing_stats.h), for the run file's routing tables.
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
  void run(const PipelineOp& pass) override;
  StepLosses endStep() override;
  RoutingStats routingStats() const override { return routing_; }
  int64_t peakActivationBytes() const override { return peak_bytes_; }
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
    // A split backward's dy of each weight gradient, kept from its B pass for its W pass: the layer
    // output's (FFN projection), the FFN's hidden (or the router logits' and the experts' rows), LayerNorm
    // 2's output, x2's (attention projection), qkv's, LayerNorm 1's output.
    Buffer w_out, w_pre, w_router, w_ln2, w_x2, w_qkv, w_ln1, w_expert_out, w_expert_pre;
    std::vector<int32_t> offsets_host;  // [E+1]
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
    int64_t held = 0;  // bytes of the micro-batch's activations in the chunk, counted since its forward
  };
  struct MicroActs {
    std::vector<int32_t> tokens_host, targets_host;
    Buffer tokens, targets, lnf, lnf_mean, lnf_rstd, logits, w_lnf;
    std::vector<ChunkIo> io;
    std::vector<LayerActs> layers;
  };
  // Which gradients a backward computes: both, the input gradient alone (keeping the weight
  // gradients' dy), or the weight gradients alone (from the kept dy).
  enum class Part { Both, Input, Weight };
  struct Norm {  // a LayerNorm's outputs and weights
    Buffer *out = nullptr, *mean = nullptr, *rstd = nullptr;
    const Param *w = nullptr, *b = nullptr;
  };
  static Norm ln1(const Layer& L, LayerActs& a) {
    return {&a.ln1, &a.ln1_mean, &a.ln1_rstd, L.ln1_w, L.ln1_b};
  }
  Norm lnf(MicroActs& a) const { return {&a.lnf, &a.lnf_mean, &a.lnf_rstd, lnf_w_, lnf_b_}; }

  Tensor reserve(Buffer& b, size_t n) { return ops_->reserve(b, n, act_); }
  Tensor reserve(Buffer& b, size_t n, DType type) { return ops_->reserve(b, n, type); }
  Tensor w(const Param* p) const { return (copy_.data ? copy_ : master_).at(p->offset); }
  Tensor g(const Param* p) const { return grad_.at(p->offset); }
  // A weight gradient, unless this backward computes the input gradient alone.
  Tensor gw(const Param* p) const { return part_ == Part::Input ? Tensor{} : g(p); }
  // Where a weight gradient's dy goes: the shared scratch, or the layer's own buffer for the W pass.
  Tensor dy(Buffer& kept, Buffer& scratch, size_t n) {
    return part_ == Part::Input ? reserve(kept, n) : scratch;
  }
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
  void weightGradients(const Chunk& chunk, ChunkIo& io, MicroActs& a);  // a split backward's W
  void layerNorm(const Norm& ln, Tensor x);
  // r = x + z + bias, and with ln.out the LayerNorm of r after it, as one operation.
  void residual(Buffer& r, Tensor x, Tensor z, Tensor bias, const Norm& ln);
  // normed: x's LayerNorm (ln_1) is done; next: the LayerNorm of the output to do with its residual.
  void layerForward(const Layer& L, LayerActs& a, Tensor x, bool normed, const Norm& next);
  void layerBackward(const Layer& L, LayerActs& a, Tensor dx);
  void layerWeightGradients(const Layer& L, LayerActs& a);
  Tensor geluOutput(LayerActs& a);
  int64_t heldBytes(const Chunk& chunk, const ChunkIo& io, const MicroActs& a) const;
  void hold(const Chunk& chunk, ChunkIo& io, const MicroActs& a);  // counts what the chunk holds now
  void release(ChunkIo& io);
  void routerForward(const Layer& L, LayerActs& a);
  void moeForwardLocal(const Layer& L, LayerActs& a);
  void moeForwardDispatch(const Layer& L, LayerActs& a);
  // dout: the layer output's gradient; dm: where LayerNorm 2's output gradient accumulates.
  void moeBackwardLocal(const Layer& L, LayerActs& a, Tensor dout, Tensor dm);
  void moeBackwardDispatch(const Layer& L, LayerActs& a, Tensor dout, Tensor dm);
  Tensor expertGradients(LayerActs& a);  // where the experts' dy goes (kept by a B pass)
  // The experts' weights, or their gradients (none in a B pass).
  std::vector<StageOps::Ffn> experts(const Layer& L, bool grads) const;
  void expertsForward(const Layer& L, LayerActs& a);
  void expertsBackward(const Layer& L, LayerActs& a, Tensor dyg);
  template <class Fn>
  void perExpert(const Layer& L, const LayerActs& a, const SpanName& what, Fn fn);  // fn(slots, row · C)
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
  Buffer y_, z_, dm_, dprobs_, drouter_, dln1_, dlnf_, dout_, dqkv_, dpre_, dyg_, dxg_, sums_;
  Buffer gelu_out_;  // the dense FFN's GELU output, where the ops recompute it (every layer's, in turn)
  Buffer send_, recv_, dsend_, drecv_, dreturned_, counts_send_, counts_recv_;
  int updates_ = 0;
  Part part_ = Part::Both;
  int64_t held_bytes_ = 0, peak_bytes_ = 0;  // saved activations in use now, and at most this step
  RoutingStats routing_;
  // Last, so destroyed first: a backend ends its work (and a failed run's collectives) before the
  // buffers above are freed.
  std::unique_ptr<StageOps> ops_;
};

}  // namespace moescope::engine
