#include "engine/stage_pass.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <stdexcept>
#include <thread>

#include "base/run_tasks.h"

namespace moescope::engine {

namespace {

using tracer::Category;
using tracer::Phase;

// Every span and collective a stage records, for every backend.
constexpr std::string_view kEmbed = "embed", kLoss = "loss", kAttention = "attention", kRouter = "router",
                           kFfn = "ffn", kGather = "gather", kExpert = "expert", kScatter = "scatter",
                           kCombine = "combine", kDispatchLayout = "dispatch_layout",
                           kExpertLayout = "expert_layout", kReturnLayout = "return_layout",
                           kGradNorm = "grad_norm", kAdamw = "adamw";
constexpr std::string_view kRecvActivation = "recv_activation", kSendActivation = "send_activation",
                           kRecvGrad = "recv_grad", kSendGrad = "send_grad",
                           kAttnAllreduce = "attn_allreduce", kFfnAllreduce = "ffn_allreduce",
                           kMoeAllreduce = "moe_allreduce", kDispatchCounts = "dispatch_counts",
                           kDispatch = "dispatch", kReturn = "return", kDispatchGrad = "dispatch_grad",
                           kReturnGrad = "return_grad", kGradAllreduce = "grad_allreduce",
                           kLossNormAllreduce = "loss_norm_allreduce";

// Parameters start at multiples of 64 elements (256 bytes of fp32), which cuBLASLt's fastest kernels
// need; the padding holds zeros that the updates leave at zero.
constexpr size_t kParamAlign = 64;

size_t roundUp(size_t n) {
  return (n + kParamAlign - 1) / kParamAlign * kParamAlign;
}

CommBuffer part(Tensor t, size_t count) {
  return {t.data, count, t.type};
}

}  // namespace

// One traced phase: ends (when tracing) once the backend has done the work enqueued inside it.
class StagePass::Span {
 public:
  Span(StagePass& pass, std::string_view name, Category category, int layer = -1, int expert = -1)
      : pass_(pass), name_(name), attrs_(pass.attrs(category, layer, expert)) {
    if (tracer::TrackRecorder* r = pass_.s_.recorder) {
      id_ = r->open(name, category);
      start_ = tracer::nowNs();
    }
  }
  ~Span() {
    if (tracer::TrackRecorder* r = pass_.s_.recorder) {
      r->close();  // the GPU tracer ties the kernels launched since open() to this span
      pass_.ops_->settle();
      r->record(name_, attrs_, start_, tracer::nowNs(), id_);
    }
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

 private:
  StagePass& pass_;
  std::string_view name_;
  tracer::SpanAttrs attrs_;
  int64_t start_ = 0;
  uint64_t id_ = 0;
};

StagePass::StagePass(const RankSetup& setup, std::unique_ptr<StageOps> ops)
    : StageShape(setup),
      s_(setup),
      c_(*setup.config),
      act_(ops->act()),
      acc_(ops->acc()),
      ops_(std::move(ops)) {
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
  wte_ = wiring.wte;
  wpe_ = wiring.wpe;
  lnf_w_ = wiring.lnf_w;
  lnf_b_ = wiring.lnf_b;
  lm_head_ = wiring.lm_head;
  layers_ = wiring.finish();
  const int stage = s_.coord.stage;
  chunks_.push_back({0, layers_.size(), first_, last_, first_ ? -1 : stage - 1, last_ ? -1 : stage + 1});
  acts_.resize(static_cast<size_t>(c_.parallel.microbatches));
  for (auto& a : acts_) {
    a.io.resize(chunks_.size());
    a.layers.resize(layers_.size());
  }

  // Scratch, reserved before the first step so that a model too large fails here.
  const size_t NC = static_cast<size_t>(N_) * C_, NE = static_cast<size_t>(N_) * std::max(E_, 1);
  for (Buffer* b : {&y_, &z_, &dm_, &dln1_}) reserve(*b, NC);
  reserve(dout_, static_cast<size_t>(N_) * Cl_);
  reserve(dqkv_, static_cast<size_t>(N_) * 3 * Cl_);
  const size_t ffn = std::max(static_cast<size_t>(N_) * Fl_, max_rows_ * F_);
  reserve(dact_, ffn);
  reserve(dpre_, ffn);
  reserve(sums_, 3, DType::F64);
  if (last_) reserve(dlnf_, NC);
  if (E_ > 0) {
    reserve(dprobs_, NE, acc_);
    reserve(drouter_, NE);
    reserve(dyg_, max_rows_ * C_);
    reserve(dxg_, max_rows_ * C_);
  }
  if (dispatch_) {
    const size_t assignments = static_cast<size_t>(N_) * K_;
    for (Buffer* b : {&send_, &dsend_, &dreturned_}) reserve(*b, assignments * C_);
    reserve(recv_, max_rows_ * C_);
    reserve(drecv_, max_rows_ * C_);
    reserve(counts_send_, static_cast<size_t>(E_), DType::I32);
    reserve(counts_recv_, static_cast<size_t>(E_), DType::I32);
  }
  ops_->synchronize();
}

void StagePass::allReduce(Communicator* c, std::initializer_list<CommBuffer> parts, std::string_view name,
                          Category category, int layer) {
  c->allReduceSum(std::span<const CommBuffer>(parts.begin(), parts.size()), comm(name, category, layer));
}

void StagePass::allToAll(Tensor send, const std::vector<size_t>& sendCounts, Tensor recv,
                         const std::vector<size_t>& recvCounts, std::string_view name, int layer) {
  s_.dp->allToAll(send.data, sendCounts.data(), recv.data, recvCounts.data(), send.type,
                  comm(name, Category::CommEpAlltoall, layer));
}

// ---------------------------------------------------------------------------------------------------
// Weights

void StagePass::upload(const Param& p, const std::vector<float>& local) {
  if (local.size() != p.n) throw std::logic_error("stage: shard size mismatch for " + p.sp.spec.name);
  ops_->writeParams(master_.at(p.offset), local.data(), p.n);
}

void StagePass::refreshComputeCopy() {
  if (copy_.data) ops_->convert(copy_, master_, total_);
  ops_->synchronize();
}

void StagePass::initialize(uint64_t seed) {
  // The generator makes about 20 M values/s per core (the same model for every layout and backend), so
  // the tensors are generated on several threads, this rank's share of the cores.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t workers = std::min<size_t>(
      params_.size(), std::max<size_t>(1, cores / static_cast<unsigned>(std::max(1, s_.world->size()))));
  std::atomic<size_t> next{0};
  runTasks(static_cast<int>(workers), [&](int) {
    ops_->bindThread();
    for (size_t i = next++; i < params_.size(); i = next++) {
      const Param& p = params_[i];
      upload(p, sliceShard(initialValues(p.sp.spec, seed), p.sp.spec.shape, p.sp.shard));
    }
  });
  refreshComputeCopy();
}

void StagePass::loadWeights(const ModelWeights& full) {
  std::map<std::string, const NamedTensor*> byName;
  for (const auto& t : full) byName[t.name] = &t;
  for (const auto& p : params_) {
    auto it = byName.find(p.sp.spec.name);
    if (it == byName.end())
      throw std::invalid_argument("loadWeights: tensor '" + p.sp.spec.name + "' is missing");
    upload(p, sliceShard(it->second->data, p.sp.spec.shape, p.sp.shard));
  }
  refreshComputeCopy();
}

void StagePass::storeWeights(ModelWeights& full) const {
  ops_->synchronize();
  std::map<std::string, NamedTensor*> byName;
  for (auto& t : full) byName[t.name] = &t;
  for (const auto& p : params_) {
    auto it = byName.find(p.sp.spec.name);
    if (it == byName.end())
      throw std::invalid_argument("storeWeights: tensor '" + p.sp.spec.name + "' is missing");
    std::vector<float> local(p.n);
    ops_->readParams(local.data(), master_.at(p.offset), p.n);
    placeShard(it->second->data, p.sp.spec.shape, p.sp.shard, local);
  }
}

// ---------------------------------------------------------------------------------------------------
// Forward

void StagePass::beginStep(int step) {
  step_ = step;
  ops_->zero(grad_, total_);
  ops_->zero(sums_, 3);
  const bool routes = std::any_of(layers_.begin(), layers_.end(), [](const Layer& l) { return l.moe; });
  routing_.kept.assign(routes ? static_cast<size_t>(E_) : 0, 0);
  routing_.dropped = 0;
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

void StagePass::forward(int mb) {
  microbatch_ = mb;
  phase_ = Phase::Forward;
  MicroActs& a = acts_[static_cast<size_t>(mb)];
  if (first_ || last_) loadBatch(a, mb);
  for (size_t c = 0; c < chunks_.size(); ++c) forward(chunks_[c], a.io[c], a);
}

void StagePass::forward(const Chunk& chunk, ChunkIo& io, MicroActs& a) {
  const size_t NC = static_cast<size_t>(N_) * C_;
  const Tensor input = reserve(io.input, NC);
  if (chunk.embeds) {
    Span sp(*this, kEmbed, Category::ComputeEmbed);
    ops_->embedding(input, a.tokens, w(wte_), w(wpe_));
  } else {
    s_.pp->recv(input.data, NC, act_, chunk.prev, comm(kRecvActivation, Category::CommPpSendrecv));
  }
  Tensor x = input;
  for (size_t i = chunk.begin; i < chunk.end; ++i) {
    layerForward(layers_[i], a.layers[i], x);
    x = a.layers[i].out;
  }
  io.out = x;
  if (chunk.heads) {
    Span sp(*this, kLoss, Category::ComputeLoss);
    const size_t n = static_cast<size_t>(N_);
    ops_->layerNorm(reserve(a.lnf, NC), reserve(a.lnf_mean, n, acc_), reserve(a.lnf_rstd, n, acc_), x,
                    w(lnf_w_), w(lnf_b_), N_, C_);
    ops_->linear(reserve(a.logits, n * V_), a.lnf, w(lm_head_), {}, N_, C_, V_);
    // The loss and, over the logits, their gradient (the backward pass starts from it).
    ops_->crossEntropy(a.logits, a.targets, 1.0 / static_cast<double>(c_.tokensPerStep()),
                       s_.coord.tp == 0 ? sums_.at(1) : Tensor{});
  } else {
    s_.pp->send(x.data, NC, act_, chunk.next, comm(kSendActivation, Category::CommPpSendrecv));
  }
}

void StagePass::layerForward(const Layer& L, LayerActs& a, Tensor x) {
  const size_t NC = static_cast<size_t>(N_) * C_, n = static_cast<size_t>(N_);
  const bool tp = s_.tp->size() > 1;
  a.x = x;
  {
    Span sp(*this, kAttention, Category::ComputeAttention, L.index);
    ops_->layerNorm(reserve(a.ln1, NC), reserve(a.ln1_mean, n, acc_), reserve(a.ln1_rstd, n, acc_), x,
                    w(L.ln1_w), w(L.ln1_b), N_, C_);
    ops_->linear(reserve(a.qkv, n * 3 * Cl_), a.ln1, w(L.attn_w), w(L.attn_b), N_, C_, 3 * Cl_);
    ops_->attention(reserve(a.o, n * Cl_), a.att, a.qkv);
    ops_->linear(y_, a.o, w(L.proj_w), {}, N_, Cl_, C_);
  }
  if (tp) allReduce(s_.tp, {part(y_, NC)}, kAttnAllreduce, Category::CommTpAllreduce, L.index);
  {
    Span sp(*this, L.moe ? kRouter : kFfn, L.moe ? Category::ComputeRouter : Category::ComputeFfn, L.index);
    ops_->residual(reserve(a.x2, NC), x, y_, w(L.proj_b), N_, C_);
    ops_->layerNorm(reserve(a.ln2, NC), reserve(a.ln2_mean, n, acc_), reserve(a.ln2_rstd, n, acc_), a.x2,
                    w(L.ln2_w), w(L.ln2_b), N_, C_);
    if (!L.moe) {
      ops_->linear(reserve(a.pre, n * Fl_), a.ln2, w(L.fc_w), w(L.fc_b), N_, C_, Fl_);
      ops_->gelu(reserve(a.act, n * Fl_), a.pre, n * Fl_);
      ops_->linear(z_, a.act, w(L.fcp_w), {}, N_, Fl_, C_);
    } else {
      routerForward(L, a);
    }
  }
  if (L.moe) {
    ops_->zero(z_, NC);
    if (dispatch_) {
      moeForwardDispatch(L, a);
    } else {
      moeForwardLocal(L, a);
    }
  }
  if (tp)
    allReduce(s_.tp, {part(z_, NC)}, L.moe ? kMoeAllreduce : kFfnAllreduce, Category::CommTpAllreduce,
              L.index);
  {
    const Category category = !L.moe      ? Category::ComputeFfn
                              : dispatch_ ? Category::MoePermute
                                          : Category::MoeSlice;
    Span sp(*this, L.moe ? kCombine : kFfn, category, L.index);
    ops_->residual(reserve(a.out, NC), a.x2, z_, L.moe ? Tensor{} : w(L.fcp_b), N_, C_);
  }
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
  for (size_t e = 0; e < E; ++e) routing_.kept[e] += a.offsets_host[e + 1] - a.offsets_host[e];
  routing_.dropped += static_cast<int64_t>(nK) - a.offsets_host[E];
}

void StagePass::expertForward(const Layer& L, LayerActs& a, size_t le) {
  const Expert& e = L.experts[le];
  const int r0 = a.row_begin[le], m = a.row_begin[le + 1] - r0;
  Span sp(*this, kExpert, Category::ComputeExpert, L.index, e.index);
  if (m == 0) return;
  const size_t rc = static_cast<size_t>(r0) * C_, rf = static_cast<size_t>(r0) * F_;
  ops_->linear(a.preg.at(rf), a.xg.at(rc), w(e.fc_w), w(e.fc_b), m, C_, F_);
  ops_->gelu(a.actg.at(rf), a.preg.at(rf), static_cast<size_t>(m) * F_);
  ops_->linear(a.yg.at(rc), a.actg.at(rf), w(e.proj_w), w(e.proj_b), m, F_, C_);
}

void StagePass::moeForwardLocal(const Layer& L, LayerActs& a) {
  const int e0 = L.experts.front().index;
  const auto& off = a.offsets_host;
  a.j0 = off[static_cast<size_t>(e0)];
  a.row_begin.resize(static_cast<size_t>(epr_) + 1);
  for (int le = 0; le <= epr_; ++le)
    a.row_begin[static_cast<size_t>(le)] = off[static_cast<size_t>(e0 + le)] - a.j0;
  a.rows = a.row_begin.back();
  for (Buffer* b : {&a.xg, &a.yg}) reserve(*b, max_rows_ * C_);
  for (Buffer* b : {&a.preg, &a.actg}) reserve(*b, max_rows_ * F_);
  for (size_t le = 0; le < L.experts.size(); ++le) {
    const int e = L.experts[le].index, r0 = a.row_begin[le], m = a.row_begin[le + 1] - r0;
    {
      Span sp(*this, kGather, Category::MoeSlice, L.index, e);
      ops_->gatherSlots(a.xg.at(static_cast<size_t>(r0) * C_), a.ln2, slots(a, a.j0 + r0, m));
    }
    expertForward(L, a, le);
    {
      Span sp(*this, kScatter, Category::MoeSlice, L.index, e);
      ops_->scatterSlots(z_, a.yg.at(static_cast<size_t>(r0) * C_), slots(a, a.j0 + r0, m), true);
    }
  }
}

// DPMoE's layouts. Send side: the kept assignments ordered by expert, so each peer's block holds its
// experts' rows in order. Receive side: [peer][local expert][row]; each local expert computes on its rows
// from every peer, gathered contiguously in peer order.
void StagePass::permute(const LayerActs& a, Tensor experts, Tensor received, bool toExperts) {
  std::vector<size_t> peer_start(static_cast<size_t>(peers_) + 1, 0);
  for (size_t p = 0; p < static_cast<size_t>(peers_); ++p)
    peer_start[p + 1] = peer_start[p] + a.recv_elems[p] / C_;
  size_t row = 0;
  for (int le = 0; le < epr_; ++le) {
    for (int p = 0; p < peers_; ++p) {
      size_t block = peer_start[static_cast<size_t>(p)];
      for (int l = 0; l < le; ++l)
        block += static_cast<size_t>(a.recv_counts[static_cast<size_t>(p * epr_ + l)]);
      const size_t count = static_cast<size_t>(a.recv_counts[static_cast<size_t>(p * epr_ + le)]);
      if (count > 0) {
        const Tensor e = experts.at(row * C_), r = received.at(block * C_);
        ops_->copy(toExperts ? e : r, toExperts ? r : e, count * C_);
      }
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
    Span sp(*this, kDispatchLayout, Category::MoePermute, L.index);
    ops_->gatherSlots(send_, a.ln2, slots(a, 0, a.total));
    std::vector<int32_t> counts(static_cast<size_t>(E_));
    for (size_t e = 0; e < counts.size(); ++e) counts[e] = off[e + 1] - off[e];
    for (int p = 0; p < peers_; ++p) {
      const size_t rows =
          static_cast<size_t>(off[static_cast<size_t>((p + 1) * epr_)] - off[static_cast<size_t>(p * epr_)]);
      a.send_elems[static_cast<size_t>(p)] = rows * C_;
    }
    ops_->upload(counts_send_, counts.data(), counts.size() * sizeof(int32_t));
  }
  // Tokens per (peer, local expert), then the rows themselves.
  const std::vector<size_t> blocks(static_cast<size_t>(peers_), static_cast<size_t>(epr_));
  allToAll(counts_send_, blocks, counts_recv_, blocks, kDispatchCounts, L.index);
  a.recv_counts.resize(static_cast<size_t>(peers_ * epr_));
  ops_->download(a.recv_counts.data(), counts_recv_, a.recv_counts.size() * sizeof(int32_t));
  a.row_begin.assign(static_cast<size_t>(epr_) + 1, 0);
  for (int p = 0; p < peers_; ++p) {
    for (int le = 0; le < epr_; ++le) {
      const int count = a.recv_counts[static_cast<size_t>(p * epr_ + le)];
      a.recv_elems[static_cast<size_t>(p)] += static_cast<size_t>(count) * C_;
      a.row_begin[static_cast<size_t>(le) + 1] += count;
    }
  }
  for (size_t le = 0; le < static_cast<size_t>(epr_); ++le) a.row_begin[le + 1] += a.row_begin[le];
  a.rows = a.row_begin.back();
  allToAll(send_, a.send_elems, recv_, a.recv_elems, kDispatch, L.index);
  for (Buffer* b : {&a.xg, &a.yg}) reserve(*b, max_rows_ * C_);
  for (Buffer* b : {&a.preg, &a.actg}) reserve(*b, max_rows_ * F_);
  {
    Span sp(*this, kExpertLayout, Category::MoePermute, L.index);
    permute(a, a.xg, recv_, true);
  }
  for (size_t le = 0; le < L.experts.size(); ++le) expertForward(L, a, le);
  {
    Span sp(*this, kReturnLayout, Category::MoePermute, L.index);
    permute(a, a.yg, recv_, false);
  }
  allToAll(recv_, a.recv_elems, reserve(a.returned, static_cast<size_t>(N_) * K_ * C_), a.send_elems, kReturn,
           L.index);
  {
    Span sp(*this, kCombine, Category::MoePermute, L.index);
    ops_->scatterSlots(z_, a.returned, slots(a, 0, a.total), false);
  }
}

// ---------------------------------------------------------------------------------------------------
// Backward

void StagePass::backward(int mb) {
  microbatch_ = mb;
  phase_ = Phase::Backward;
  MicroActs& a = acts_[static_cast<size_t>(mb)];
  for (size_t c = chunks_.size(); c-- > 0;) backward(chunks_[c], a.io[c], a);
}

void StagePass::backward(const Chunk& chunk, ChunkIo& io, MicroActs& a) {
  const size_t NC = static_cast<size_t>(N_) * C_;
  const Tensor dx = reserve(io.dx, NC);
  if (chunk.heads) {
    Span sp(*this, kLoss, Category::ComputeLoss);
    ops_->zero(dlnf_, NC);
    ops_->linearBackward(dlnf_, g(lm_head_), {}, a.logits, a.lnf, w(lm_head_), N_, C_, V_);
    ops_->zero(dx, NC);
    ops_->layerNormBackward(dx, g(lnf_w_), g(lnf_b_), dlnf_, io.out, w(lnf_w_), a.lnf_mean, a.lnf_rstd, N_,
                            C_);
  } else {
    s_.pp->recv(dx.data, NC, act_, chunk.next, comm(kRecvGrad, Category::CommPpSendrecv));
  }
  for (size_t i = chunk.end; i-- > chunk.begin;) layerBackward(layers_[i], a.layers[i], dx);
  if (chunk.embeds) {
    Span sp(*this, kEmbed, Category::ComputeEmbed);
    ops_->embeddingBackward(g(wte_), g(wpe_), dx, a.tokens);
  } else {
    s_.pp->send(dx.data, NC, act_, chunk.prev, comm(kSendGrad, Category::CommPpSendrecv));
  }
}

void StagePass::layerBackward(const Layer& L, LayerActs& a, Tensor dx) {
  const size_t NC = static_cast<size_t>(N_) * C_, NE = static_cast<size_t>(N_) * E_;
  const bool tp = s_.tp->size() > 1;
  // dx holds the gradient of the layer output, which is also that of x2 through the residual.
  ops_->zero(dm_, NC);
  if (L.moe) ops_->zero(dprobs_, NE);
  if (!L.moe) {
    Span sp(*this, kFfn, Category::ComputeFfn, L.index);
    const size_t nf = static_cast<size_t>(N_) * Fl_;
    ops_->zero(dact_, nf);
    ops_->linearBackward(dact_, g(L.fcp_w), g(L.fcp_b), dx, a.act, w(L.fcp_w), N_, Fl_, C_);
    ops_->zero(dpre_, nf);
    ops_->geluBackward(dpre_, a.pre, dact_, nf);
    ops_->linearBackward(dm_, g(L.fc_w), g(L.fc_b), dpre_, a.ln2, w(L.fc_w), N_, C_, Fl_);
  } else if (dispatch_) {
    moeBackwardDispatch(L, a, dx);
  } else {
    moeBackwardLocal(L, a, dx);
  }
  // The MoE layer's input and router gradients are reduced together: one all-reduce per layer.
  if (tp && L.moe)
    allReduce(s_.tp, {part(dm_, NC), part(dprobs_, NE)}, kMoeAllreduce, Category::CommTpAllreduce, L.index);
  if (tp && !L.moe) allReduce(s_.tp, {part(dm_, NC)}, kFfnAllreduce, Category::CommTpAllreduce, L.index);
  {
    Span sp(*this, L.moe ? kRouter : kFfn, L.moe ? Category::ComputeRouter : Category::ComputeFfn, L.index);
    if (L.moe) {
      const double groups = static_cast<double>(c_.parallel.dp * c_.parallel.microbatches);
      ops_->routerBackward(drouter_, dprobs_, a.probs, a.f, c_.model.aux_loss_coef / groups);
      ops_->linearBackward(dm_, g(L.router), {}, drouter_, a.ln2, w(L.router), N_, C_, E_);
    }
    // dx becomes the gradient of x2: the residual plus LayerNorm 2's input gradient.
    ops_->layerNormBackward(dx, g(L.ln2_w), g(L.ln2_b), dm_, a.x2, w(L.ln2_w), a.ln2_mean, a.ln2_rstd, N_,
                            C_);
  }
  {
    Span sp(*this, kAttention, Category::ComputeAttention, L.index);
    const size_t ncl = static_cast<size_t>(N_) * Cl_;
    ops_->zero(dout_, ncl);
    ops_->linearBackward(dout_, g(L.proj_w), g(L.proj_b), dx, a.o, w(L.proj_w), N_, Cl_, C_);
    ops_->zero(dqkv_, 3 * ncl);
    ops_->attentionBackward(dqkv_, dout_, a.qkv, a.o, a.att);
    ops_->zero(dln1_, NC);
    ops_->linearBackward(dln1_, g(L.attn_w), g(L.attn_b), dqkv_, a.ln1, w(L.attn_w), N_, C_, 3 * Cl_);
  }
  if (tp) allReduce(s_.tp, {part(dln1_, NC)}, kAttnAllreduce, Category::CommTpAllreduce, L.index);
  {
    Span sp(*this, kAttention, Category::ComputeAttention, L.index);
    ops_->layerNormBackward(dx, g(L.ln1_w), g(L.ln1_b), dln1_, a.x, w(L.ln1_w), a.ln1_mean, a.ln1_rstd, N_,
                            C_);
  }
}

void StagePass::expertBackward(const Layer& L, LayerActs& a, size_t le) {
  const Expert& e = L.experts[le];
  const int r0 = a.row_begin[le], m = a.row_begin[le + 1] - r0;
  Span sp(*this, kExpert, Category::ComputeExpert, L.index, e.index);
  if (m == 0) return;
  const size_t rc = static_cast<size_t>(r0) * C_, rf = static_cast<size_t>(r0) * F_;
  const size_t mf = static_cast<size_t>(m) * F_;
  ops_->zero(dact_, mf);
  ops_->linearBackward(dact_, g(e.proj_w), g(e.proj_b), dyg_.at(rc), a.actg.at(rf), w(e.proj_w), m, F_, C_);
  ops_->zero(dpre_, mf);
  ops_->geluBackward(dpre_, a.preg.at(rf), dact_, mf);
  ops_->linearBackward(dxg_.at(rc), g(e.fc_w), g(e.fc_b), dpre_, a.xg.at(rc), w(e.fc_w), m, C_, F_);
}

void StagePass::moeBackwardLocal(const Layer& L, LayerActs& a, Tensor dout) {
  ops_->zero(dyg_, static_cast<size_t>(a.rows) * C_);
  ops_->zero(dxg_, static_cast<size_t>(a.rows) * C_);
  for (size_t le = 0; le < L.experts.size(); ++le) {
    const int e = L.experts[le].index, r0 = a.row_begin[le], m = a.row_begin[le + 1] - r0;
    const size_t rc = static_cast<size_t>(r0) * C_;
    {
      Span sp(*this, kScatter, Category::MoeSlice, L.index, e);
      ops_->scatterSlotsBackward(dyg_.at(rc), dprobs_, dout, a.yg.at(rc), slots(a, a.j0 + r0, m));
    }
    expertBackward(L, a, le);
    {
      Span sp(*this, kGather, Category::MoeSlice, L.index, e);
      ops_->gatherSlotsBackward(dm_, dxg_.at(rc), slots(a, a.j0 + r0, m), true);
    }
  }
}

void StagePass::moeBackwardDispatch(const Layer& L, LayerActs& a, Tensor dout) {
  {
    Span sp(*this, kCombine, Category::MoePermute, L.index);
    ops_->zero(dsend_, static_cast<size_t>(a.total) * C_);
    ops_->scatterSlotsBackward(dsend_, dprobs_, dout, a.returned, slots(a, 0, a.total));
  }
  allToAll(dsend_, a.send_elems, drecv_, a.recv_elems, kDispatchGrad, L.index);
  {
    Span sp(*this, kExpertLayout, Category::MoePermute, L.index);
    permute(a, dyg_, drecv_, true);
  }
  ops_->zero(dxg_, static_cast<size_t>(a.rows) * C_);
  for (size_t le = 0; le < L.experts.size(); ++le) expertBackward(L, a, le);
  {
    Span sp(*this, kReturnLayout, Category::MoePermute, L.index);
    permute(a, dxg_, drecv_, false);
  }
  allToAll(drecv_, a.recv_elems, dreturned_, a.send_elems, kReturnGrad, L.index);
  {
    Span sp(*this, kDispatchLayout, Category::MoePermute, L.index);
    ops_->gatherSlotsBackward(dm_, dreturned_, slots(a, 0, a.total), false);
  }
}

// ---------------------------------------------------------------------------------------------------
// Gradient reduction and the update

template <class Key, class Fn>
void StagePass::forEachRun(Key key, Fn fn) const {
  size_t i = 0;
  while (i < params_.size()) {
    const auto value = key(params_[i]);
    size_t j = i + 1;
    while (j < params_.size() && key(params_[j]) == value &&
           params_[j].offset == params_[j - 1].offset + roundUp(params_[j - 1].n))
      ++j;
    const size_t begin = params_[i].offset;
    fn(begin, params_[j - 1].offset + params_[j - 1].n - begin, value);
    i = j;
  }
}

void StagePass::reduce() {
  microbatch_ = -1;
  phase_ = Phase::Optimizer;
  if (s_.dp->size() > 1 && dp_count_ > 0)
    allReduce(s_.dp, {part(grad_, dp_count_)}, kGradAllreduce, Category::CommDpAllreduce);
  {
    // Squared norm: each parameter counted once over its copies; runs of neighbours counted alike
    // are one call (the padding between them is zero).
    Span sp(*this, kGradNorm, Category::Optimizer);
    const auto counted = [&](const Param& p) {
      return (p.sp.tp_unique || s_.coord.tp == 0) && (p.sp.dp_unique || s_.coord.dp == 0);
    };
    forEachRun(counted, [&](size_t begin, size_t n, bool c) {
      if (c) ops_->sumOfSquares(sums_, grad_.at(begin), n);
    });
  }
  allReduce(s_.world, {part(sums_, 3)}, kLossNormAllreduce, Category::CommDpAllreduce);
}

StepLosses StagePass::losses() {
  double sums[3] = {0, 0, 0};
  ops_->download(sums, sums_, sizeof sums);
  StepLosses losses;
  losses.grad_norm = std::sqrt(sums[0]);
  losses.ce = sums[1] / static_cast<double>(c_.tokensPerStep());
  losses.aux = sums[2] / static_cast<double>(c_.parallel.dp * c_.parallel.microbatches);
  losses.loss = losses.ce + c_.model.aux_loss_coef * losses.aux;
  return losses;
}

StepLosses StagePass::reduceGradients() {
  reduce();
  return losses();
}

StepLosses StagePass::endStep() {
  reduce();
  Span sp(*this, kAdamw, Category::Optimizer);
  ops_->clip(sums_, c_.train.grad_clip);
  ++updates_;
  forEachRun([](const Param& p) { return p.sp.spec.decay; },
             [&](size_t begin, size_t n, bool decay) {
               cpu::AdamWParams hp;
               hp.lr = c_.train.lr;
               hp.beta1 = c_.train.beta1;
               hp.beta2 = c_.train.beta2;
               hp.eps = c_.train.eps;
               hp.weightDecay = decay ? c_.train.weight_decay : 0.0;
               ops_->adamw(master_.at(begin), copy_.data ? copy_.at(begin) : Tensor{}, grad_.at(begin),
                           m_.at(begin), v_.at(begin), n, hp, updates_);
             });
  return losses();  // the host's one wait for the backend in the step
}

}  // namespace moescope::engine
