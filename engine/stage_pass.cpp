#include "engine/stage_pass.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <tuple>

#include "base/run_tasks.h"
#include "engine/host_cores.h"

namespace moescope::engine {

namespace {

using tracer::Category;
using tracer::Phase;

// Every span and collective a stage records, whatever the backend.
constexpr std::string_view kCombineName = "combine";
constexpr SpanName kEmbed{"embed", Category::ComputeEmbed}, kLoss{"loss", Category::ComputeLoss},
    kAttention{"attention", Category::ComputeAttention}, kRouter{"router", Category::ComputeRouter},
    kFfn{"ffn", Category::ComputeFfn}, kExperts{"experts", Category::ComputeExpert},
    kGather{"gather", Category::MoeSlice}, kScatter{"scatter", Category::MoeSlice},
    kSliceCombine{kCombineName, Category::MoeSlice}, kPermuteCombine{kCombineName, Category::MoePermute},
    kDispatchLayout{"dispatch_layout", Category::MoePermute},
    kExpertLayout{"expert_layout", Category::MoePermute},
    kReturnLayout{"return_layout", Category::MoePermute}, kGradNorm{"grad_norm", Category::Optimizer},
    kAdamw{"adamw", Category::Optimizer}, kRecvActivation{"recv_activation", Category::CommPpSendrecv},
    kSendActivation{"send_activation", Category::CommPpSendrecv},
    kRecvGrad{"recv_grad", Category::CommPpSendrecv}, kSendGrad{"send_grad", Category::CommPpSendrecv},
    kAttnAllreduce{"attn_allreduce", Category::CommTpAllreduce},
    kFfnAllreduce{"ffn_allreduce", Category::CommTpAllreduce},
    kMoeAllreduce{"moe_allreduce", Category::CommTpAllreduce},
    kDispatchCounts{"dispatch_counts", Category::CommEpAlltoall},
    kDispatch{"dispatch", Category::CommEpAlltoall}, kReturn{"return", Category::CommEpAlltoall},
    kDispatchGrad{"dispatch_grad", Category::CommEpAlltoall},
    kReturnGrad{"return_grad", Category::CommEpAlltoall},
    kGradAllreduce{"grad_allreduce", Category::CommDpAllreduce},
    kLossNormAllreduce{"loss_norm_allreduce", Category::CommDpAllreduce};

// Parameters start at multiples of 64 elements (256 bytes of fp32), which cuBLASLt's fastest kernels
// need; the padding holds zeros that the updates leave at zero.
size_t roundUp(size_t n) {
  return (n + 63) / 64 * 64;
}

CommBuffer part(Tensor t, size_t count) {
  return {t.data, count, t.type};
}

template <class Weights>
auto& tensorNamed(Weights& full, const std::string& name, const char* caller) {
  auto it = std::find_if(full.begin(), full.end(), [&](const auto& t) { return t.name == name; });
  if (it == full.end())
    throw std::invalid_argument(std::string(caller) + ": tensor '" + name + "' is missing");
  return *it;
}

}  // namespace

// One traced phase, ended (when tracing) once the backend has done the work enqueued inside it.
class StagePass::Span : tracer::ScopedSpan {
 public:
  Span(StagePass& p, const SpanName& step, int layer = -1, int expert = -1)
      : ScopedSpan(p.s_.recorder, step.name, p.attrs(step.category, layer, expert)), pass_(p) {}
  ~Span() {
    if (pass_.s_.recorder) pass_.ops_->settle();
  }

 private:
  StagePass& pass_;
};

StagePass::StagePass(const RankSetup& setup, std::unique_ptr<StageOps> ops)
    : StageShape(setup), s_(setup), c_(*setup.config), act_(ops->act), acc_(ops->acc), ops_(std::move(ops)) {
  epr_ = s_.layout->expertsPerRank();
  peers_ = s_.dp->size();
  if (E_ > 0) max_rows_ = static_cast<size_t>(N_) * std::min(K_, epr_) * (dispatch_ ? peers_ : 1);
  // Parameters: dp-replicated ones first, so the gradient all-reduce is one call over a prefix.
  for (const auto& sp : stageParameters(c_, *s_.layout, s_.coord)) {
    int64_t n = 1;
    for (int64_t d : shardShape(sp.spec.shape, sp.shard)) n *= d;
    params_.push_back({sp, 0, static_cast<size_t>(n)});
  }
  for (bool unique : {false, true}) {
    for (auto& p : params_) {
      if (p.sp.dp_unique != unique) continue;
      p.offset = total_;
      total_ += roundUp(p.n);
    }
    if (!unique) dp_count_ = total_;
  }
  for (Buffer* b : {&master_, &grad_, &m_, &v_}) ops_->zero(reserve(*b, total_, acc_), total_);
  if (act_ != acc_) ops_->zero(reserve(copy_, total_), total_);
  StageWiring<Layer, Expert, const Param*> wiring(c_.model, *s_.layout, s_.coord.stage);
  for (const Param& p : params_) wiring.add(p.sp, &p);
  std::tie(wte_, wpe_, lnf_w_, lnf_b_, lm_head_) =
      std::tuple(wiring.wte, wiring.wpe, wiring.lnf_w, wiring.lnf_b, wiring.lm_head);
  layers_ = wiring.finish();
  // Chunk c of the stage is model chunk g = c x pp + stage: its input comes from model chunk g - 1's
  // stage, its output goes to g + 1's; the first model chunk embeds, the last computes the loss.
  const int stage = s_.coord.stage, pp = s_.layout->pp();
  const auto& ranges = s_.layout->chunks(stage);
  const int last_chunk = pp * static_cast<int>(ranges.size()) - 1;
  size_t slot = 0;
  for (size_t c = 0; c < ranges.size(); ++c) {
    const int g = static_cast<int>(c) * pp + stage;
    const size_t n = static_cast<size_t>(ranges[c].end - ranges[c].begin);
    chunks_.push_back({slot, slot + n, g == 0, g == last_chunk, g > 0 ? (g - 1) % pp : -1,
                       g < last_chunk ? (g + 1) % pp : -1});
    slot += n;
  }
  acts_.resize(static_cast<size_t>(c_.parallel.microbatches));
  for (auto& a : acts_) {
    a.io.resize(chunks_.size());
    a.layers.resize(layers_.size());
  }
  // Scratch, reserved before the first step so that a model too large fails here.
  const size_t NC = static_cast<size_t>(N_) * C_, NE = static_cast<size_t>(N_) * E_, rows = max_rows_ * C_;
  for (Buffer* b : {&y_, &z_, &dm_, &dln1_}) reserve(*b, NC);
  reserve(dout_, static_cast<size_t>(N_) * Cl_);
  reserve(dqkv_, static_cast<size_t>(N_) * 3 * Cl_);
  reserve(dpre_, std::max(static_cast<size_t>(N_) * Fl_, max_rows_ * F_));
  reserve(sums_, 3, DType::F64);
  if (last_) reserve(dlnf_, NC);
  if (E_ > 0) {
    reserve(dprobs_, NE, acc_);
    reserve(drouter_, NE);
    for (Buffer* b : {&dyg_, &dxg_}) reserve(*b, rows);
  }
  if (dispatch_) {
    for (Buffer* b : {&send_, &dsend_, &dreturned_}) reserve(*b, static_cast<size_t>(N_) * K_ * C_);
    for (Buffer* b : {&recv_, &drecv_}) reserve(*b, rows);
    for (Buffer* b : {&counts_send_, &counts_recv_}) reserve(*b, static_cast<size_t>(E_), DType::I32);
  }
  ops_->synchronize();
}

void StagePass::allReduce(Communicator* c, std::initializer_list<CommBuffer> parts, const SpanName& what,
                          int layer) {
  c->allReduceSum(std::span<const CommBuffer>(parts.begin(), parts.size()), comm(what, layer));
}

void StagePass::allToAll(Tensor send, const std::vector<size_t>& sendCounts, Tensor recv,
                         const std::vector<size_t>& recvCounts, const SpanName& what, int layer) {
  s_.dp->allToAll(send, sendCounts.data(), recv, recvCounts.data(), send.type, comm(what, layer));
}

// ---------------------------------------------------------------------------------------------------
// Weights

template <class Full>
void StagePass::fill(size_t workers, Full full) {
  std::atomic<size_t> next{0};
  runTasks(static_cast<int>(workers), [&](int) {
    ops_->bindThread();
    for (size_t i = next++; i < params_.size(); i = next++) {
      const Param& p = params_[i];
      const std::vector<float> local = sliceShard(full(p), p.sp.spec.shape, p.sp.shard);
      if (local.size() != p.n) throw std::logic_error("stage: shard size mismatch for " + p.sp.spec.name);
      ops_->writeParams(master_.at(p.offset), local.data(), p.n);
    }
  });
  if (copy_.data) ops_->convert(copy_, master_, total_);
  ops_->synchronize();
}

void StagePass::initialize(uint64_t seed) {
  // The generator makes about 20 M values/s per core (the same model for every layout and backend), so
  // the tensors are generated on several threads, this rank's share of the cores.
  const auto cores = static_cast<unsigned>(usableCores());
  const size_t workers = std::max<size_t>(1, cores / static_cast<unsigned>(std::max(1, s_.world->size())));
  fill(std::min(workers, params_.size()), [&](const Param& p) { return initialValues(p.sp.spec, seed); });
}

void StagePass::loadWeights(const ModelWeights& full) {
  for (const auto& p : params_) tensorNamed(full, p.sp.spec.name, "loadWeights");
  fill(1, [&](const Param& p) -> const std::vector<float>& {
    return tensorNamed(full, p.sp.spec.name, "loadWeights").data;
  });
}

void StagePass::storeWeights(ModelWeights& full) const {
  ops_->bindThread();
  ops_->synchronize();
  for (const auto& p : params_) {
    std::vector<float> local(p.n);
    ops_->readParams(local.data(), master_.at(p.offset), p.n);
    placeShard(tensorNamed(full, p.sp.spec.name, "storeWeights").data, p.sp.spec.shape, p.sp.shard, local);
  }
}

// ---------------------------------------------------------------------------------------------------
// Forward

void StagePass::beginStep(int step) {
  step_ = step;
  held_bytes_ = peak_bytes_ = 0;
  for (auto& a : acts_)
    for (ChunkIo& io : a.io) io.held = 0;
  ops_->zero(grad_, total_);
  ops_->zero(sums_, 3);
  const bool routes = std::any_of(layers_.begin(), layers_.end(), [](const Layer& l) { return l.moe; });
  routing_ = {};
  routing_.kept.assign(routes ? static_cast<size_t>(E_) : 0, 0);
}

void StagePass::loadBatch(MicroActs& a, int mb) {
  const size_t n = static_cast<size_t>(N_);
  a.tokens_host.resize(n);
  a.targets_host.resize(n);
  for (int row = 0; row < B_; ++row) {
    const int64_t j = sequenceIndex(c_, step_, s_.coord.dp, mb, row);
    s_.data->sequence(j, a.tokens_host.data() + row * T_, a.targets_host.data() + row * T_);
  }
  ops_->upload(reserve(a.tokens, n, DType::I32), a.tokens_host.data(), n * sizeof(int32_t));
  ops_->upload(reserve(a.targets, n, DType::I32), a.targets_host.data(), n * sizeof(int32_t));
}

void StagePass::run(const PipelineOp& pass) {
  using Kind = PipelineOp::Kind;
  const auto c = static_cast<size_t>(pass.chunk), mb = static_cast<size_t>(pass.microbatch);
  if (pass.chunk < 0 || c >= chunks_.size() || pass.microbatch < 0 || mb >= acts_.size())
    throw std::logic_error("stage: no chunk " + std::to_string(pass.chunk) + " or micro-batch " +
                           std::to_string(pass.microbatch) + " here");
  microbatch_ = pass.microbatch;
  chunk_ = chunks_.size() > 1 ? pass.chunk : -1;
  MicroActs& a = acts_[mb];
  const Chunk& chunk = chunks_[c];
  ChunkIo& io = a.io[c];
  switch (pass.kind) {
    case Kind::Forward:
      phase_ = Phase::Forward;
      if (chunk.embeds || chunk.heads) loadBatch(a, pass.microbatch);
      forward(chunk, io, a);
      hold(chunk, io, a);
      break;
    case Kind::Backward:
    case Kind::BackwardInput:
      phase_ = Phase::Backward;
      part_ = pass.kind == Kind::Backward ? Part::Both : Part::Input;
      backward(chunk, io, a);
      part_ == Part::Both ? release(io) : hold(chunk, io, a);
      part_ = Part::Both;
      break;
    case Kind::BackwardWeight:
      phase_ = Phase::BackwardWeight;
      part_ = Part::Weight;
      weightGradients(chunk, io, a);
      part_ = Part::Both;
      release(io);
      break;
  }
}

// The dense FFN's GELU output for the weight gradient of its second product: kept from the forward, or
// recomputed from the kept pre-activation into the buffer every layer shares (StageOps::recomputesGelu).
Tensor StagePass::geluOutput(LayerActs& a) {
  if (!ops_->recomputesGelu()) return a.act;
  const size_t nf = static_cast<size_t>(N_) * Fl_;
  const Tensor out = reserve(gelu_out_, nf);
  ops_->gelu(out, a.pre, nf);
  return out;
}

// What a micro-batch keeps in a chunk for its backward passes: the chunk's input, every layer's saved
// activations, the embedding's tokens or the head's; after a split backward's B, the dy kept for W.
int64_t StagePass::heldBytes(const Chunk& chunk, const ChunkIo& io, const MicroActs& a) const {
  const bool kept = part_ == Part::Input;
  int64_t bytes = static_cast<int64_t>(io.input.bytes);
  auto add = [&](std::initializer_list<const Buffer*> buffers) {
    for (const Buffer* b : buffers) bytes += static_cast<int64_t>(b->bytes);
  };
  for (size_t i = chunk.begin; i < chunk.end; ++i) {
    const LayerActs& l = a.layers[i];
    add({&l.ln1,      &l.ln1_mean, &l.ln1_rstd, &l.qkv, &l.att,    &l.o,     &l.x2, &l.ln2,     &l.ln2_mean,
         &l.ln2_rstd, &l.pre,      &l.act,      &l.out, &l.logits, &l.probs, &l.f,  &l.choice,  &l.keep,
         &l.order,    &l.offsets,  &l.slot_of,  &l.xg,  &l.preg,   &l.actg,  &l.yg, &l.returned});
    if (kept)
      add({&l.w_out, &l.w_pre, &l.w_router, &l.w_ln2, &l.w_x2, &l.w_qkv, &l.w_ln1, &l.w_expert_out,
           &l.w_expert_pre});
  }
  if (chunk.embeds) add({&a.tokens});
  if (chunk.heads) add({&a.targets, &a.lnf, &a.lnf_mean, &a.lnf_rstd, &a.logits});
  if (chunk.heads && kept) add({&a.w_lnf});
  return bytes;
}

void StagePass::hold(const Chunk& chunk, ChunkIo& io, const MicroActs& a) {
  const int64_t now = heldBytes(chunk, io, a);
  held_bytes_ += now - io.held;
  io.held = now;
  peak_bytes_ = std::max(peak_bytes_, held_bytes_);
}

void StagePass::release(ChunkIo& io) {
  held_bytes_ -= io.held;
  io.held = 0;
}

void StagePass::forward(const Chunk& chunk, ChunkIo& io, MicroActs& a) {
  const size_t NC = static_cast<size_t>(N_) * C_, n = static_cast<size_t>(N_);
  const Tensor input = reserve(io.input, NC);
  if (chunk.embeds) {
    Span sp(*this, kEmbed);
    ops_->embedding(input, a.tokens, w(wte_), w(wpe_));
  } else {
    s_.pp->recv(input.data, NC, act_, chunk.prev, comm(kRecvActivation));
  }
  // Each layer's output residual and the LayerNorm after it (the next layer's first, or the final one)
  // are one operation, in the layer's last span.
  Tensor x = input;
  for (size_t i = chunk.begin; i < chunk.end; ++i) {
    const Norm next = i + 1 < chunk.end ? ln1(layers_[i + 1], a.layers[i + 1])
                      : chunk.heads     ? lnf(a)
                                        : Norm{};
    layerForward(layers_[i], a.layers[i], x, i > chunk.begin, next);
    x = a.layers[i].out;
  }
  io.out = x;
  if (!chunk.heads) {
    s_.pp->send(x.data, NC, act_, chunk.next, comm(kSendActivation));
    return;
  }
  Span sp(*this, kLoss);
  if (chunk.begin == chunk.end) layerNorm(lnf(a), x);
  ops_->linear(reserve(a.logits, n * V_), a.lnf, w(lm_head_), {}, N_, C_, V_);
  // The loss and, over the logits, their gradient (the backward pass starts from it).
  ops_->crossEntropy(a.logits, a.targets, 1.0 / static_cast<double>(c_.tokensPerStep()),
                     s_.coord.tp == 0 ? sums_.at(1) : Tensor{});
}

void StagePass::layerNorm(const Norm& ln, Tensor x) {
  const size_t n = static_cast<size_t>(N_);
  ops_->layerNorm(reserve(*ln.out, n * C_), reserve(*ln.mean, n, acc_), reserve(*ln.rstd, n, acc_), x,
                  w(ln.w), w(ln.b));
}

void StagePass::residual(Buffer& r, Tensor x, Tensor z, Tensor bias, const Norm& ln) {
  const size_t n = static_cast<size_t>(N_);
  const Tensor out = reserve(r, n * C_);
  if (!ln.out) return ops_->residual(out, x, z, bias);
  ops_->residualLayerNorm(out, reserve(*ln.out, n * C_), reserve(*ln.mean, n, acc_),
                          reserve(*ln.rstd, n, acc_), x, z, bias, w(ln.w), w(ln.b));
}

void StagePass::layerForward(const Layer& L, LayerActs& a, Tensor x, bool normed, const Norm& next) {
  const size_t NC = static_cast<size_t>(N_) * C_, n = static_cast<size_t>(N_);
  const bool tp = s_.tp->size() > 1;
  a.x = x;
  {
    Span sp(*this, kAttention, L.index);
    if (!normed) layerNorm(ln1(L, a), x);
    ops_->linear(reserve(a.qkv, n * 3 * Cl_), a.ln1, w(L.attn_w), w(L.attn_b), N_, C_, 3 * Cl_);
    ops_->attention(reserve(a.o, n * Cl_), a.att, a.qkv);
    ops_->linear(y_, a.o, w(L.proj_w), {}, N_, Cl_, C_);
  }
  if (tp) allReduce(s_.tp, {part(y_, NC)}, kAttnAllreduce, L.index);
  {
    Span sp(*this, L.moe ? kRouter : kFfn, L.index);
    residual(a.x2, x, y_, w(L.proj_b), {&a.ln2, &a.ln2_mean, &a.ln2_rstd, L.ln2_w, L.ln2_b});
    if (L.moe) {
      routerForward(L, a);
    } else {
      ops_->ffn(z_, reserve(a.pre, n * Fl_), reserve(ops_->recomputesGelu() ? gelu_out_ : a.act, n * Fl_),
                a.ln2, {w(L.fc_w), w(L.fc_b), w(L.fcp_w), {}}, N_, Fl_);
    }
  }
  if (L.moe) {
    ops_->zero(z_, NC);
    dispatch_ ? moeForwardDispatch(L, a) : moeForwardLocal(L, a);
  }
  if (tp) allReduce(s_.tp, {part(z_, NC)}, L.moe ? kMoeAllreduce : kFfnAllreduce, L.index);
  Span sp(*this, !L.moe ? kFfn : dispatch_ ? kPermuteCombine : kSliceCombine, L.index);
  residual(a.out, a.x2, z_, L.moe ? Tensor{} : w(L.fcp_b), next);
}

void StagePass::routerForward(const Layer& L, LayerActs& a) {
  const size_t n = static_cast<size_t>(N_), E = static_cast<size_t>(E_), nK = n * K_;
  ops_->linear(reserve(a.logits, n * E), a.ln2, w(L.router), {}, N_, C_, E_);
  ops_->router(reserve(a.probs, n * E, acc_), reserve(a.choice, nK, DType::I32),
               reserve(a.keep, nK, DType::U8), a.logits,
               cpu::expertCapacity(c_.model.capacity_factor, N_, K_, E_));
  ops_->auxLoss(reserve(a.f, E, acc_), s_.coord.tp == 0 ? sums_.at(2) : Tensor{}, a.probs, a.choice);
  ops_->expertOrder(reserve(a.order, nK, DType::I32), reserve(a.offsets, E + 1, DType::I32),
                    reserve(a.slot_of, nK, DType::I32), a.choice, a.keep);
  // The one host synchronisation of the layer: the experts' slot ranges size their matrix products.
  a.offsets_host.resize(E + 1);
  ops_->download(a.offsets_host.data(), a.offsets, (E + 1) * sizeof(int32_t));
  addRouting(routing_, {step_, microbatch_, L.index, s_.coord.dp, static_cast<int64_t>(nK)}, a.offsets_host);
  for (Buffer* b : {&a.xg, &a.yg}) reserve(*b, max_rows_ * C_);
  for (Buffer* b : {&a.preg, &a.actg}) reserve(*b, max_rows_ * F_);
}

std::vector<StageOps::Ffn> StagePass::experts(const Layer& L, bool grads) const {
  const auto t = [&](const Param* p) { return grads ? gw(p) : w(p); };
  std::vector<StageOps::Ffn> out;
  for (const Expert& e : L.experts) out.push_back({t(e.fc_w), t(e.fc_b), t(e.proj_w), t(e.proj_b)});
  return out;
}

// One span for all of a rank's experts (per layer and micro-batch, each pass): they run as one operation
// (a grouped GEMM where the backend has it), and the tokens each expert computed on are the routing
// counters'.
void StagePass::expertsForward(const Layer& L, LayerActs& a) {
  Span sp(*this, kExperts, L.index);
  ops_->experts(a.yg, a.preg, a.actg, a.xg, experts(L, false), a.row_begin);
}

// dyg: the expert rows' output gradient. A B pass computes no weight gradient (gw) and keeps each row's
// hidden gradient for its W pass.
void StagePass::expertsBackward(const Layer& L, LayerActs& a, Tensor dyg) {
  Span sp(*this, kExperts, L.index);
  const Tensor dpre = part_ == Part::Input ? Tensor(a.w_expert_pre) : Tensor(dpre_);
  ops_->expertsBackward(dxg_, experts(L, true), dpre, dyg, a.xg, a.preg, a.actg, experts(L, false),
                        a.row_begin);
}

template <class Fn>
void StagePass::perExpert(const Layer& L, const LayerActs& a, const SpanName& what, Fn fn) {
  for (size_t le = 0; le < L.experts.size(); ++le) {
    const int r0 = a.row_begin[le];
    Span sp(*this, what, L.index, L.experts[le].index);
    fn(slots(a, a.j0 + r0, a.row_begin[le + 1] - r0), static_cast<size_t>(r0) * C_);
  }
}

void StagePass::moeForwardLocal(const Layer& L, LayerActs& a) {
  const int e0 = L.experts.front().index;
  a.j0 = a.offsets_host[static_cast<size_t>(e0)];
  a.row_begin.resize(static_cast<size_t>(epr_) + 1);
  for (size_t le = 0; le < a.row_begin.size(); ++le) a.row_begin[le] = a.offsets_host[e0 + le] - a.j0;
  a.rows = a.row_begin.back();
  perExpert(L, a, kGather, [&](const Slots& s, size_t rc) { ops_->gatherSlots(a.xg.at(rc), a.ln2, s); });
  expertsForward(L, a);
  perExpert(L, a, kScatter, [&](const Slots& s, size_t rc) { ops_->scatterSlots(z_, a.yg.at(rc), s, true); });
}

// DPMoE's layouts. Send side: the kept assignments ordered by expert, so each peer's block holds its
// experts' rows in order. Receive side: [peer][local expert][row]; each local expert computes on its rows
// from every peer, gathered contiguously in peer order.
void StagePass::permute(const LayerActs& a, Tensor experts, Tensor received, bool toExperts) {
  std::vector<size_t> start(static_cast<size_t>(peers_) + 1, 0);  // each peer's first row in received
  for (size_t p = 0; p < a.recv_elems.size(); ++p) start[p + 1] = start[p] + a.recv_elems[p] / C_;
  size_t row = 0;
  for (int le = 0; le < epr_; ++le) {
    for (int p = 0; p < peers_; ++p) {
      size_t block = start[static_cast<size_t>(p)];
      for (int l = 0; l < le; ++l)
        block += static_cast<size_t>(a.recv_counts[static_cast<size_t>(p * epr_ + l)]);
      const size_t count = static_cast<size_t>(a.recv_counts[static_cast<size_t>(p * epr_ + le)]);
      const Tensor e = experts.at(row * C_), r = received.at(block * C_);
      if (count > 0) ops_->copy(toExperts ? e : r, toExperts ? r : e, count * C_);
      row += count;
    }
  }
}

void StagePass::moeForwardDispatch(const Layer& L, LayerActs& a) {
  const auto& off = a.offsets_host;
  a.total = off[static_cast<size_t>(E_)];
  a.send_elems.assign(static_cast<size_t>(peers_), 0);
  a.recv_elems.assign(static_cast<size_t>(peers_), 0);
  {
    Span sp(*this, kDispatchLayout, L.index);
    ops_->gatherSlots(send_, a.ln2, slots(a, 0, a.total));
    std::vector<int32_t> counts(static_cast<size_t>(E_));
    for (size_t e = 0; e < counts.size(); ++e) counts[e] = off[e + 1] - off[e];
    for (size_t p = 0; p < a.send_elems.size(); ++p)
      a.send_elems[p] = static_cast<size_t>(off[(p + 1) * epr_] - off[p * epr_]) * C_;
    ops_->upload(counts_send_, counts.data(), counts.size() * sizeof(int32_t));
  }
  // Tokens per (peer, local expert), then the rows themselves.
  const std::vector<size_t> blocks(static_cast<size_t>(peers_), static_cast<size_t>(epr_));
  allToAll(counts_send_, blocks, counts_recv_, blocks, kDispatchCounts, L.index);
  a.recv_counts.resize(static_cast<size_t>(E_));
  ops_->download(a.recv_counts.data(), counts_recv_, a.recv_counts.size() * sizeof(int32_t));
  a.row_begin.assign(static_cast<size_t>(epr_) + 1, 0);
  for (size_t i = 0; i < a.recv_counts.size(); ++i) {
    a.recv_elems[i / epr_] += static_cast<size_t>(a.recv_counts[i]) * C_;
    a.row_begin[i % epr_ + 1] += a.recv_counts[i];
  }
  for (size_t le = 0; le + 1 < a.row_begin.size(); ++le) a.row_begin[le + 1] += a.row_begin[le];
  a.rows = a.row_begin.back();
  allToAll(send_, a.send_elems, recv_, a.recv_elems, kDispatch, L.index);
  {
    Span sp(*this, kExpertLayout, L.index);
    permute(a, a.xg, recv_, true);
  }
  expertsForward(L, a);
  {
    Span sp(*this, kReturnLayout, L.index);
    permute(a, a.yg, recv_, false);
  }
  allToAll(recv_, a.recv_elems, reserve(a.returned, static_cast<size_t>(N_) * K_ * C_), a.send_elems, kReturn,
           L.index);
  Span sp(*this, kPermuteCombine, L.index);
  ops_->scatterSlots(z_, a.returned, slots(a, 0, a.total), false);
}

// ---------------------------------------------------------------------------------------------------
// Backward

void StagePass::backward(const Chunk& chunk, ChunkIo& io, MicroActs& a) {
  const size_t NC = static_cast<size_t>(N_) * C_;
  const Tensor dx = reserve(io.dx, NC);
  if (chunk.heads) {
    Span sp(*this, kLoss);
    const Tensor dlnf = dy(a.w_lnf, dlnf_, NC);
    ops_->zero(dlnf, NC);
    ops_->linearBackward(dlnf, gw(lm_head_), {}, a.logits, a.lnf, w(lm_head_), N_, C_, V_);
    ops_->zero(dx, NC);
    ops_->layerNormBackward(dx, gw(lnf_w_), gw(lnf_b_), dlnf, io.out, w(lnf_w_), a.lnf_mean, a.lnf_rstd);
  } else {
    s_.pp->recv(dx.data, NC, act_, chunk.next, comm(kRecvGrad));
  }
  for (size_t i = chunk.end; i-- > chunk.begin;) layerBackward(layers_[i], a.layers[i], dx);
  if (!chunk.embeds) {
    s_.pp->send(dx.data, NC, act_, chunk.prev, comm(kSendGrad));
    return;
  }
  if (part_ == Part::Input) return;  // the embedding's gradients are all weight gradients: W's
  Span sp(*this, kEmbed);
  ops_->embeddingBackward(g(wte_), g(wpe_), dx, a.tokens);
}

void StagePass::weightGradients(const Chunk& chunk, ChunkIo& io, MicroActs& a) {
  if (chunk.heads) {
    Span sp(*this, kLoss);
    ops_->linearBackward({}, g(lm_head_), {}, a.logits, a.lnf, {}, N_, C_, V_);
    ops_->layerNormBackward({}, g(lnf_w_), g(lnf_b_), a.w_lnf, io.out, w(lnf_w_), a.lnf_mean, a.lnf_rstd);
  }
  for (size_t i = chunk.end; i-- > chunk.begin;) layerWeightGradients(layers_[i], a.layers[i]);
  if (!chunk.embeds) return;
  Span sp(*this, kEmbed);
  ops_->embeddingBackward(g(wte_), g(wpe_), io.dx, a.tokens);
}

void StagePass::layerBackward(const Layer& L, LayerActs& a, Tensor dx) {
  const size_t NC = static_cast<size_t>(N_) * C_, NE = static_cast<size_t>(N_) * E_;
  const bool tp = s_.tp->size() > 1;
  // dx holds the gradient of the layer output, which is also that of x2 through the residual. A B pass
  // (Part::Input) keeps each weight gradient's dy in the layer's own buffers (dy()); dx changes below, so
  // it keeps copies of it.
  const bool keep = part_ == Part::Input;
  if (keep && !L.moe) ops_->copy(reserve(a.w_out, NC), dx, NC);
  const Tensor dm = dy(a.w_ln2, dm_, NC);
  ops_->zero(dm, NC);
  if (L.moe) {
    ops_->zero(dprobs_, NE);
    dispatch_ ? moeBackwardDispatch(L, a, dx, dm) : moeBackwardLocal(L, a, dx, dm);
  } else {
    Span sp(*this, kFfn, L.index);
    const size_t nf = static_cast<size_t>(N_) * Fl_;
    // A B pass computes no weight gradients: the GELU output, which only they read, is not recomputed.
    const Tensor act = keep ? Tensor(a.act) : geluOutput(a);
    ops_->ffnBackward(dm, {gw(L.fc_w), gw(L.fc_b), gw(L.fcp_w), gw(L.fcp_b)}, dy(a.w_pre, dpre_, nf), dx,
                      a.ln2, a.pre, act, {w(L.fc_w), w(L.fc_b), w(L.fcp_w), {}}, N_, Fl_);
  }
  // A MoE layer's input and router gradients are reduced together: one all-reduce per layer.
  if (tp && L.moe) allReduce(s_.tp, {part(dm, NC), part(dprobs_, NE)}, kMoeAllreduce, L.index);
  if (tp && !L.moe) allReduce(s_.tp, {part(dm, NC)}, kFfnAllreduce, L.index);
  {
    Span sp(*this, L.moe ? kRouter : kFfn, L.index);
    if (L.moe) {
      const double groups = static_cast<double>(c_.parallel.dp * c_.parallel.microbatches);
      const Tensor drouter = dy(a.w_router, drouter_, NE);
      ops_->routerBackward(drouter, dprobs_, a.probs, a.f, c_.model.aux_loss_coef / groups);
      ops_->linearBackward(dm, gw(L.router), {}, drouter, a.ln2, w(L.router), N_, C_, E_);
    }
    // dx becomes the gradient of x2: the residual plus LayerNorm 2's input gradient.
    ops_->layerNormBackward(dx, gw(L.ln2_w), gw(L.ln2_b), dm, a.x2, w(L.ln2_w), a.ln2_mean, a.ln2_rstd);
  }
  const size_t ncl = static_cast<size_t>(N_) * Cl_;
  const Tensor dln1 = dy(a.w_ln1, dln1_, NC);
  {
    Span sp(*this, kAttention, L.index);
    if (keep) ops_->copy(reserve(a.w_x2, NC), dx, NC);
    ops_->zero(dout_, ncl);
    ops_->linearBackward(dout_, gw(L.proj_w), gw(L.proj_b), dx, a.o, w(L.proj_w), N_, Cl_, C_);
    const Tensor dqkv = dy(a.w_qkv, dqkv_, 3 * ncl);
    ops_->attentionBackward(dqkv, dout_, a.qkv, a.o, a.att);
    ops_->zero(dln1, NC);
    ops_->linearBackward(dln1, gw(L.attn_w), gw(L.attn_b), dqkv, a.ln1, w(L.attn_w), N_, C_, 3 * Cl_);
  }
  if (tp) allReduce(s_.tp, {part(dln1, NC)}, kAttnAllreduce, L.index);
  Span sp(*this, kAttention, L.index);
  ops_->layerNormBackward(dx, gw(L.ln1_w), gw(L.ln1_b), dln1, a.x, w(L.ln1_w), a.ln1_mean, a.ln1_rstd);
}

// A split backward's W: each weight gradient from the dy its B pass kept, in the spans the backward
// computes them in, so a layer's W reads like its backward.
void StagePass::layerWeightGradients(const Layer& L, LayerActs& a) {
  if (L.moe) {
    Span sp(*this, kExperts, L.index);
    for (size_t le = 0; le < L.experts.size(); ++le) {
      const int r0 = a.row_begin[le], m = a.row_begin[le + 1] - r0;
      const size_t rc = static_cast<size_t>(r0) * C_, rf = static_cast<size_t>(r0) * F_;
      const Expert& e = L.experts[le];
      if (m == 0) continue;
      ops_->linearBackward({}, g(e.proj_w), g(e.proj_b), a.w_expert_out.at(rc), a.actg.at(rf), {}, m, F_, C_);
      ops_->linearBackward({}, g(e.fc_w), g(e.fc_b), a.w_expert_pre.at(rf), a.xg.at(rc), {}, m, C_, F_);
    }
  } else {
    Span sp(*this, kFfn, L.index);
    ops_->linearBackward({}, g(L.fcp_w), g(L.fcp_b), a.w_out, geluOutput(a), {}, N_, Fl_, C_);
    ops_->linearBackward({}, g(L.fc_w), g(L.fc_b), a.w_pre, a.ln2, {}, N_, C_, Fl_);
  }
  {
    Span sp(*this, L.moe ? kRouter : kFfn, L.index);
    if (L.moe) ops_->linearBackward({}, g(L.router), {}, a.w_router, a.ln2, {}, N_, C_, E_);
    ops_->layerNormBackward({}, g(L.ln2_w), g(L.ln2_b), a.w_ln2, a.x2, w(L.ln2_w), a.ln2_mean, a.ln2_rstd);
  }
  Span sp(*this, kAttention, L.index);
  ops_->linearBackward({}, g(L.proj_w), g(L.proj_b), a.w_x2, a.o, {}, N_, Cl_, C_);
  ops_->linearBackward({}, g(L.attn_w), g(L.attn_b), a.w_qkv, a.ln1, {}, N_, C_, 3 * Cl_);
  ops_->layerNormBackward({}, g(L.ln1_w), g(L.ln1_b), a.w_ln1, a.x, w(L.ln1_w), a.ln1_mean, a.ln1_rstd);
}

// A B pass keeps the experts' output gradient (returned) and each expert row's hidden gradient
// (w_expert_pre) for its W pass.
Tensor StagePass::expertGradients(LayerActs& a) {
  if (part_ == Part::Input) reserve(a.w_expert_pre, max_rows_ * F_);
  return dy(a.w_expert_out, dyg_, max_rows_ * C_);
}

void StagePass::moeBackwardLocal(const Layer& L, LayerActs& a, Tensor dout, Tensor dm) {
  const Tensor dyg = expertGradients(a);
  ops_->zero(dyg, static_cast<size_t>(a.rows) * C_);
  ops_->zero(dxg_, static_cast<size_t>(a.rows) * C_);
  perExpert(L, a, kScatter, [&](const Slots& s, size_t rc) {
    ops_->scatterSlotsBackward(dyg.at(rc), dprobs_, dout, a.yg.at(rc), s);
  });
  expertsBackward(L, a, dyg);
  perExpert(L, a, kGather,
            [&](const Slots& s, size_t rc) { ops_->gatherSlotsBackward(dm, dxg_.at(rc), s, true); });
}

void StagePass::moeBackwardDispatch(const Layer& L, LayerActs& a, Tensor dout, Tensor dm) {
  {
    Span sp(*this, kPermuteCombine, L.index);
    ops_->zero(dsend_, static_cast<size_t>(a.total) * C_);
    ops_->scatterSlotsBackward(dsend_, dprobs_, dout, a.returned, slots(a, 0, a.total));
  }
  allToAll(dsend_, a.send_elems, drecv_, a.recv_elems, kDispatchGrad, L.index);
  const Tensor dyg = expertGradients(a);
  {
    Span sp(*this, kExpertLayout, L.index);
    permute(a, dyg, drecv_, true);
  }
  ops_->zero(dxg_, static_cast<size_t>(a.rows) * C_);
  expertsBackward(L, a, dyg);
  {
    Span sp(*this, kReturnLayout, L.index);
    permute(a, dxg_, drecv_, false);
  }
  allToAll(drecv_, a.recv_elems, dreturned_, a.send_elems, kReturnGrad, L.index);
  Span sp(*this, kDispatchLayout, L.index);
  ops_->gatherSlotsBackward(dm, dreturned_, slots(a, 0, a.total), false);
}

// ---------------------------------------------------------------------------------------------------
// Gradient reduction and the update

template <class Key, class Fn>
void StagePass::forEachRun(Key key, Fn fn) const {
  for (size_t i = 0, j = 0; i < params_.size(); i = j) {
    const auto value = key(params_[i]);
    j = i + 1;
    while (j < params_.size() && key(params_[j]) == value &&
           params_[j].offset == params_[j - 1].offset + roundUp(params_[j - 1].n))
      ++j;
    fn(params_[i].offset, params_[j - 1].offset + params_[j - 1].n - params_[i].offset, value);
  }
}

void StagePass::reduce() {
  microbatch_ = -1;
  chunk_ = -1;
  phase_ = Phase::Optimizer;
  if (s_.dp->size() > 1 && dp_count_ > 0) allReduce(s_.dp, {part(grad_, dp_count_)}, kGradAllreduce);
  {
    // Squared norm: each parameter counted once over its copies; runs of neighbours counted alike
    // are one call (the padding between them is zero).
    Span sp(*this, kGradNorm);
    const auto counted = [&](const Param& p) {
      return (p.sp.tp_unique || s_.coord.tp == 0) && (p.sp.dp_unique || s_.coord.dp == 0);
    };
    forEachRun(counted, [&](size_t begin, size_t n, bool c) {
      if (c) ops_->sumOfSquares(sums_, grad_.at(begin), n);
    });
  }
  allReduce(s_.world, {part(sums_, 3)}, kLossNormAllreduce);
}

StepLosses StagePass::losses() {
  double sums[3] = {0, 0, 0};
  ops_->download(sums, sums_, sizeof sums);
  const double ce = sums[1] / static_cast<double>(c_.tokensPerStep());
  const double aux = sums[2] / static_cast<double>(c_.parallel.dp * c_.parallel.microbatches);
  return {ce + c_.model.aux_loss_coef * aux, ce, aux, std::sqrt(sums[0])};
}

StepLosses StagePass::reduceGradients() {
  reduce();
  return losses();
}

StepLosses StagePass::endStep() {
  reduce();
  Span sp(*this, kAdamw);
  ops_->clip(sums_, c_.train.grad_clip);
  std::vector<StageOps::ParamRun> runs;
  forEachRun([](const Param& p) { return p.sp.spec.decay; },
             [&](size_t begin, size_t n, bool decay) {
               runs.push_back({master_.at(begin), copy_.data ? copy_.at(begin) : Tensor{}, grad_.at(begin),
                               m_.at(begin), v_.at(begin), n, decay});
             });
  const auto& t = c_.train;
  ops_->adamw(runs, {t.lr, t.beta1, t.beta2, t.eps, t.weight_decay}, ++updates_);
  return losses();  // the host's one wait for the backend in the step
}

}  // namespace moescope::engine
