#include "engine/cpu_stage.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "engine/cpu/ops.h"
#include "engine/stage_parameters.h"

namespace moescope::engine {

using tracer::Category;
using tracer::Phase;
using tracer::ScopedSpan;
namespace ops = cpu;

template <class T>
CpuStage<T>::CpuStage(const RankSetup& setup) : StageShape(setup), s_(setup), c_(*setup.config) {
  const auto& m = c_.model;
  const RankCoord& rc = s_.coord;

  // The rank's parameters, wired into the layer structures by role.
  StageWiring<Layer, Expert, Param*> wiring(m, *s_.layout, rc.stage);
  for (const auto& sp : stageParameters(c_, *s_.layout, rc)) {
    wiring.add(sp, addParam(sp.spec, sp.shard, sp.tp_unique, sp.dp_unique));
  }
  wte_ = wiring.wte;
  wpe_ = wiring.wpe;
  lnf_w_ = wiring.lnf_w;
  lnf_b_ = wiring.lnf_b;
  lm_head_ = wiring.lm_head;
  layers_ = wiring.finish();
  acts_.resize(static_cast<size_t>(c_.parallel.microbatches));
  for (auto& a : acts_) a.layers.resize(layers_.size());
}

template <class T>
typename CpuStage<T>::Param* CpuStage<T>::addParam(const ParamSpec& spec, Shard shard, bool tp_unique,
                                                   bool dp_unique) {
  Param p;
  p.name = spec.name;
  p.spec = spec;
  p.full_shape = spec.shape;
  p.shard = shard;
  int64_t n = 1;
  for (int64_t d : shardShape(spec.shape, shard)) n *= d;
  p.value.assign(static_cast<size_t>(n), T(0));
  p.grad.assign(static_cast<size_t>(n), T(0));
  p.m.assign(static_cast<size_t>(n), T(0));
  p.v.assign(static_cast<size_t>(n), T(0));
  p.decay = spec.decay;
  p.tp_unique = tp_unique;
  p.dp_unique = dp_unique;
  params_.push_back(std::move(p));
  return &params_.back();
}

template <class T>
void CpuStage<T>::initialize(uint64_t seed) {
  for (auto& p : params_) {
    const auto local = sliceShard(initialValues(p.spec, seed), p.spec.shape, p.shard);
    for (size_t i = 0; i < local.size(); ++i) p.value[i] = static_cast<T>(local[i]);
  }
}

template <class T>
void CpuStage<T>::loadWeights(const ModelWeights& full) {
  std::map<std::string, const NamedTensor*> byName;
  for (const auto& t : full) byName[t.name] = &t;
  for (auto& p : params_) {
    auto it = byName.find(p.name);
    if (it == byName.end()) throw std::invalid_argument("loadWeights: tensor '" + p.name + "' is missing");
    const auto local = sliceShard(it->second->data, p.full_shape, p.shard);
    for (size_t i = 0; i < local.size(); ++i) p.value[i] = static_cast<T>(local[i]);
  }
}

template <class T>
void CpuStage<T>::storeWeights(ModelWeights& full) const {
  std::map<std::string, NamedTensor*> byName;
  for (auto& t : full) byName[t.name] = &t;
  for (const auto& p : params_) {
    auto it = byName.find(p.name);
    if (it == byName.end()) throw std::invalid_argument("storeWeights: tensor '" + p.name + "' is missing");
    std::vector<float> local(p.value.size());
    for (size_t i = 0; i < local.size(); ++i) local[i] = static_cast<float>(p.value[i]);
    placeShard(it->second->data, p.full_shape, p.shard, local);
  }
}

template <class T>
void CpuStage<T>::beginStep(int step) {
  step_ = step;
  for (auto& p : params_) std::fill(p.grad.begin(), p.grad.end(), T(0));
  ce_sum_ = 0;
  const bool routes = std::any_of(layers_.begin(), layers_.end(), [](const Layer& l) { return l.moe; });
  routing_.kept.assign(routes ? static_cast<size_t>(E_) : 0, 0);
  routing_.dropped = 0;
  aux_sum_ = 0;
}

template <class T>
void CpuStage<T>::loadBatch(MicroActs& a, int mb) {
  a.tokens.resize(static_cast<size_t>(N_));
  a.targets.resize(static_cast<size_t>(N_));
  for (int row = 0; row < B_; ++row) {
    const int64_t j = sequenceIndex(c_, step_, s_.coord.dp, mb, row);
    s_.data->sequence(j, a.tokens.data() + row * T_, a.targets.data() + row * T_);
  }
}

// ---------------------------------------------------------------------------------------------------
// Forward

template <class T>
void CpuStage<T>::forward(int mb) {
  microbatch_ = mb;
  phase_ = Phase::Forward;
  MicroActs& a = acts_[static_cast<size_t>(mb)];
  const size_t NC = static_cast<size_t>(N_) * C_;
  if (first_ || last_) loadBatch(a, mb);
  std::vector<T> x(NC), y(NC);
  if (first_) {
    ScopedSpan span(s_.recorder, "embed", attrs(Category::ComputeEmbed));
    ops::embeddingForward(x.data(), a.tokens.data(), wte_->value.data(), wpe_->value.data(), B_, T_, C_);
  } else {
    s_.pp->recv(x.data(), NC, s_.coord.stage - 1, comm("recv_activation", Category::CommPpSendrecv));
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    layerForward(layers_[i], a.layers[i], x.data(), y.data());
    std::swap(x, y);
  }
  a.out = x;
  if (last_) {
    ScopedSpan span(s_.recorder, "loss", attrs(Category::ComputeLoss));
    a.lnf.resize(NC);
    a.lnf_mean.resize(static_cast<size_t>(N_));
    a.lnf_rstd.resize(static_cast<size_t>(N_));
    a.logits.resize(static_cast<size_t>(N_) * V_);
    ops::layerNormForward(a.lnf.data(), a.lnf_mean.data(), a.lnf_rstd.data(), x.data(), lnf_w_->value.data(),
                          lnf_b_->value.data(), N_, C_);
    ops::linearForward(a.logits.data(), a.lnf.data(), lm_head_->value.data(), static_cast<const T*>(nullptr),
                       N_, C_, V_);
    ce_sum_ += ops::crossEntropyForward(static_cast<T*>(nullptr), a.logits.data(), a.targets.data(), N_, V_);
  } else {
    s_.pp->send(x.data(), NC, s_.coord.stage + 1, comm("send_activation", Category::CommPpSendrecv));
  }
}

template <class T>
void CpuStage<T>::layerForward(const Layer& L, LayerActs& a, const T* x, T* out) {
  const size_t NC = static_cast<size_t>(N_) * C_;
  const bool tp = s_.tp->size() > 1;
  std::vector<T> y(NC);
  {
    ScopedSpan span(s_.recorder, "attention", attrs(Category::ComputeAttention, L.index));
    a.x.assign(x, x + NC);
    a.ln1.resize(NC);
    a.ln1_mean.resize(static_cast<size_t>(N_));
    a.ln1_rstd.resize(static_cast<size_t>(N_));
    a.qkv.resize(static_cast<size_t>(N_) * 3 * Cl_);
    a.att.resize(static_cast<size_t>(B_) * NHl_ * T_ * T_);
    a.o.resize(static_cast<size_t>(N_) * Cl_);
    ops::layerNormForward(a.ln1.data(), a.ln1_mean.data(), a.ln1_rstd.data(), x, L.ln1_w->value.data(),
                          L.ln1_b->value.data(), N_, C_);
    ops::linearForward(a.qkv.data(), a.ln1.data(), L.attn_w->value.data(), L.attn_b->value.data(), N_, C_,
                       3 * Cl_);
    ops::attentionForward(a.o.data(), a.att.data(), a.qkv.data(), B_, T_, NHl_, D_);
    ops::linearForward(y.data(), a.o.data(), L.proj_w->value.data(), static_cast<const T*>(nullptr), N_, Cl_,
                       C_);
  }
  if (tp) s_.tp->allReduceSum(y.data(), NC, comm("attn_allreduce", Category::CommTpAllreduce, L.index));
  const Category ffn_category = L.moe ? Category::ComputeRouter : Category::ComputeFfn;
  std::vector<T> z(NC, T(0));
  {
    ScopedSpan span(s_.recorder, L.moe ? "router" : "ffn", attrs(ffn_category, L.index));
    a.x2.resize(NC);
    const T* pb = L.proj_b->value.data();
    for (int n = 0; n < N_; ++n)
      for (int ch = 0; ch < C_; ++ch) a.x2[n * C_ + ch] = x[n * C_ + ch] + y[n * C_ + ch] + pb[ch];
    a.ln2.resize(NC);
    a.ln2_mean.resize(static_cast<size_t>(N_));
    a.ln2_rstd.resize(static_cast<size_t>(N_));
    ops::layerNormForward(a.ln2.data(), a.ln2_mean.data(), a.ln2_rstd.data(), a.x2.data(),
                          L.ln2_w->value.data(), L.ln2_b->value.data(), N_, C_);
    if (!L.moe) {
      a.pre.resize(static_cast<size_t>(N_) * Fl_);
      a.act.resize(static_cast<size_t>(N_) * Fl_);
      ops::linearForward(a.pre.data(), a.ln2.data(), L.fc_w->value.data(), L.fc_b->value.data(), N_, C_, Fl_);
      ops::geluForward(a.act.data(), a.pre.data(), a.pre.size());
      ops::linearForward(z.data(), a.act.data(), L.fcp_w->value.data(), static_cast<const T*>(nullptr), N_,
                         Fl_, C_);
    } else {
      a.probs.resize(static_cast<size_t>(N_) * E_);
      a.choice.resize(static_cast<size_t>(N_) * K_);
      a.keep.resize(static_cast<size_t>(N_) * K_);
      a.f.resize(static_cast<size_t>(E_));
      ops::linearForward(a.probs.data(), a.ln2.data(), L.router->value.data(), static_cast<const T*>(nullptr),
                         N_, C_, E_);
      ops::softmaxForward(a.probs.data(), a.probs.data(), N_, E_);
      ops::routerTopK(a.choice.data(), a.probs.data(), N_, E_, K_);
      const int capacity = ops::expertCapacity(c_.model.capacity_factor, N_, K_, E_);
      std::vector<int32_t> load(static_cast<size_t>(E_));
      routing_.dropped +=
          ops::routerCapacity(a.keep.data(), load.data(), a.choice.data(), N_, E_, K_, capacity);
      for (int e = 0; e < E_; ++e) routing_.kept[static_cast<size_t>(e)] += load[static_cast<size_t>(e)];
      const T aux = ops::auxLossForward(a.f.data(), a.probs.data(), a.choice.data(), N_, E_, K_);
      if (s_.coord.tp == 0) aux_sum_ += static_cast<double>(aux);
    }
  }
  if (L.moe) {
    if (dispatch_) {
      moeForwardDispatch(L, a, z.data());
    } else {
      moeForwardLocal(L, a, z.data());
    }
  }
  if (tp) {
    s_.tp->allReduceSum(z.data(), NC,
                        comm(L.moe ? "moe_allreduce" : "ffn_allreduce", Category::CommTpAllreduce, L.index));
  }
  {
    const Category category = !L.moe      ? Category::ComputeFfn
                              : dispatch_ ? Category::MoePermute
                                          : Category::MoeSlice;
    ScopedSpan span(s_.recorder, L.moe ? "combine" : "ffn", attrs(category, L.index));
    const T* b = L.moe ? nullptr : L.fcp_b->value.data();
    for (int n = 0; n < N_; ++n)
      for (int ch = 0; ch < C_; ++ch)
        out[n * C_ + ch] = a.x2[n * C_ + ch] + z[n * C_ + ch] + (b ? b[ch] : T(0));
  }
}

template <class T>
void CpuStage<T>::expertForward(const Expert& e, ExpertActs& x) {
  x.pre.resize(static_cast<size_t>(x.m) * F_);
  x.act.resize(static_cast<size_t>(x.m) * F_);
  x.y.resize(static_cast<size_t>(x.m) * C_);
  if (x.m == 0) return;
  ops::linearForward(x.pre.data(), x.x.data(), e.fc_w->value.data(), e.fc_b->value.data(), x.m, C_, F_);
  ops::geluForward(x.act.data(), x.pre.data(), x.pre.size());
  ops::linearForward(x.y.data(), x.act.data(), e.proj_w->value.data(), e.proj_b->value.data(), x.m, F_, C_);
}

template <class T>
void CpuStage<T>::moeForwardLocal(const Layer& L, LayerActs& a, T* moe_out) {
  a.experts.resize(L.experts.size());
  for (size_t i = 0; i < L.experts.size(); ++i) {
    const Expert& e = L.experts[i];
    ExpertActs& x = a.experts[i];
    {
      ScopedSpan span(s_.recorder, "gather", attrs(Category::MoeSlice, L.index, e.index));
      x.rows.resize(static_cast<size_t>(N_));
      x.m = ops::expertRows(x.rows.data(), a.choice.data(), a.keep.data(), N_, K_, e.index);
      x.x.resize(static_cast<size_t>(x.m) * C_);
      ops::gatherRows(x.x.data(), a.ln2.data(), x.rows.data(), x.m, C_);
    }
    {
      ScopedSpan span(s_.recorder, "expert", attrs(Category::ComputeExpert, L.index, e.index));
      expertForward(e, x);
    }
    {
      ScopedSpan span(s_.recorder, "scatter", attrs(Category::MoeSlice, L.index, e.index));
      ops::scatterAddWeighted(moe_out, x.y.data(), a.probs.data(), x.rows.data(), x.m, C_, E_, e.index);
    }
  }
}

// DPMoE's layouts. Send side: the rows for every expert in expert order, so each peer's block holds its
// experts' rows in order. Receive side: [peer][local expert][row]; each local expert computes on its rows
// from every peer, gathered contiguously in peer order.
template <class T>
size_t CpuStage<T>::peerElements(const LayerActs& a, std::vector<size_t>& send,
                                 std::vector<size_t>& recv) const {
  const size_t peers = a.send_rows.size();
  send.resize(peers);
  recv.resize(peers);
  size_t recv_rows = 0;
  for (size_t p = 0; p < peers; ++p) {
    send[p] = a.send_rows[p] * static_cast<size_t>(C_);
    recv[p] = a.recv_rows[p] * static_cast<size_t>(C_);
    recv_rows += a.recv_rows[p];
  }
  return recv_rows;
}

template <class T>
void CpuStage<T>::peerToExpert(const LayerActs& a, const T* peer_rows, int le, T* expert_rows) const {
  const int epr = s_.layout->expertsPerRank();
  size_t block = 0, row = 0;  // block: where peer p's rows start in peer_rows
  for (size_t p = 0; p < a.recv_rows.size(); ++p) {
    size_t offset = block;
    for (int l = 0; l < le; ++l)
      offset += static_cast<size_t>(a.recv_counts[p * epr + static_cast<size_t>(l)]);
    const size_t n = static_cast<size_t>(a.recv_counts[p * epr + static_cast<size_t>(le)]);
    std::copy_n(peer_rows + offset * C_, n * C_, expert_rows + row * C_);
    row += n;
    block += a.recv_rows[p];
  }
}

template <class T>
void CpuStage<T>::expertToPeer(const LayerActs& a, const T* expert_rows, int le, T* peer_rows) const {
  const int epr = s_.layout->expertsPerRank();
  size_t block = 0, row = 0;
  for (size_t p = 0; p < a.recv_rows.size(); ++p) {
    size_t offset = block;
    for (int l = 0; l < le; ++l)
      offset += static_cast<size_t>(a.recv_counts[p * epr + static_cast<size_t>(l)]);
    const size_t n = static_cast<size_t>(a.recv_counts[p * epr + static_cast<size_t>(le)]);
    std::copy_n(expert_rows + row * C_, n * C_, peer_rows + offset * C_);
    row += n;
    block += a.recv_rows[p];
  }
}

template <class T>
void CpuStage<T>::moeForwardDispatch(const Layer& L, LayerActs& a, T* moe_out) {
  const int peers = s_.dp->size();
  const int epr = s_.layout->expertsPerRank();
  std::vector<T> send;
  std::vector<int32_t> send_counts(static_cast<size_t>(E_));
  {
    ScopedSpan span(s_.recorder, "dispatch_layout", attrs(Category::MoePermute, L.index));
    a.rows.resize(static_cast<size_t>(E_));
    size_t total = 0;
    for (int e = 0; e < E_; ++e) {
      auto& rows = a.rows[static_cast<size_t>(e)];
      rows.resize(static_cast<size_t>(N_));
      rows.resize(
          static_cast<size_t>(ops::expertRows(rows.data(), a.choice.data(), a.keep.data(), N_, K_, e)));
      send_counts[static_cast<size_t>(e)] = static_cast<int32_t>(rows.size());
      total += rows.size();
    }
    send.resize(total * C_);
    size_t offset = 0;
    a.send_rows.assign(static_cast<size_t>(peers), 0);
    for (int e = 0; e < E_; ++e) {
      const auto& rows = a.rows[static_cast<size_t>(e)];
      ops::gatherRows(send.data() + offset * C_, a.ln2.data(), rows.data(), static_cast<int>(rows.size()),
                      C_);
      offset += rows.size();
      a.send_rows[static_cast<size_t>(s_.layout->expertOwnerDp(e))] += rows.size();
    }
  }
  // Tokens per (peer, local expert), then the rows themselves.
  a.recv_counts.assign(static_cast<size_t>(peers * epr), 0);
  std::vector<size_t> count_blocks(static_cast<size_t>(peers), static_cast<size_t>(epr));
  s_.dp->allToAll(send_counts.data(), count_blocks.data(), a.recv_counts.data(), count_blocks.data(),
                  comm("dispatch_counts", Category::CommEpAlltoall, L.index));
  a.recv_rows.assign(static_cast<size_t>(peers), 0);
  for (int p = 0; p < peers; ++p)
    for (int le = 0; le < epr; ++le)
      a.recv_rows[static_cast<size_t>(p)] += a.recv_counts[static_cast<size_t>(p * epr + le)];
  std::vector<size_t> send_elems, recv_elems;
  std::vector<T> recv(peerElements(a, send_elems, recv_elems) * C_);
  s_.dp->allToAll(send.data(), send_elems.data(), recv.data(), recv_elems.data(),
                  comm("dispatch", Category::CommEpAlltoall, L.index));
  a.experts.resize(L.experts.size());
  {
    ScopedSpan span(s_.recorder, "expert_layout", attrs(Category::MoePermute, L.index));
    for (int le = 0; le < epr; ++le) {
      ExpertActs& x = a.experts[static_cast<size_t>(le)];
      x.m = 0;
      for (int p = 0; p < peers; ++p) x.m += a.recv_counts[static_cast<size_t>(p * epr + le)];
      x.x.resize(static_cast<size_t>(x.m) * C_);
      peerToExpert(a, recv.data(), le, x.x.data());
    }
  }
  for (int le = 0; le < epr; ++le) {
    ScopedSpan span(s_.recorder, "expert",
                    attrs(Category::ComputeExpert, L.index, L.experts[static_cast<size_t>(le)].index));
    expertForward(L.experts[static_cast<size_t>(le)], a.experts[static_cast<size_t>(le)]);
  }
  {
    ScopedSpan span(s_.recorder, "return_layout", attrs(Category::MoePermute, L.index));
    for (int le = 0; le < epr; ++le)
      expertToPeer(a, a.experts[static_cast<size_t>(le)].y.data(), le, recv.data());
  }
  a.returned.resize(send.size());
  s_.dp->allToAll(recv.data(), recv_elems.data(), a.returned.data(), send_elems.data(),
                  comm("return", Category::CommEpAlltoall, L.index));
  {
    ScopedSpan span(s_.recorder, "combine", attrs(Category::MoePermute, L.index));
    size_t offset = 0;
    for (int e = 0; e < E_; ++e) {
      const auto& rows = a.rows[static_cast<size_t>(e)];
      ops::scatterAddWeighted(moe_out, a.returned.data() + offset * C_, a.probs.data(), rows.data(),
                              static_cast<int>(rows.size()), C_, E_, e);
      offset += rows.size();
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Backward

template <class T>
void CpuStage<T>::backward(int mb) {
  microbatch_ = mb;
  phase_ = Phase::Backward;
  MicroActs& a = acts_[static_cast<size_t>(mb)];
  const size_t NC = static_cast<size_t>(N_) * C_;
  std::vector<T> dx(NC, T(0));
  if (last_) {
    ScopedSpan span(s_.recorder, "loss", attrs(Category::ComputeLoss));
    std::vector<T> dlogits(static_cast<size_t>(N_) * V_, T(0)), dlnf(NC, T(0));
    const T scale = static_cast<T>(1.0 / static_cast<double>(c_.tokensPerStep()));
    ops::crossEntropyBackward(dlogits.data(), a.logits.data(), a.targets.data(), scale, N_, V_);
    ops::linearBackward(dlnf.data(), lm_head_->grad.data(), static_cast<T*>(nullptr), dlogits.data(),
                        a.lnf.data(), lm_head_->value.data(), N_, C_, V_);
    ops::layerNormBackward(dx.data(), lnf_w_->grad.data(), lnf_b_->grad.data(), dlnf.data(), a.out.data(),
                           lnf_w_->value.data(), a.lnf_mean.data(), a.lnf_rstd.data(), N_, C_);
  } else {
    s_.pp->recv(dx.data(), NC, s_.coord.stage + 1, comm("recv_grad", Category::CommPpSendrecv));
  }
  for (size_t i = layers_.size(); i-- > 0;) layerBackward(layers_[i], a.layers[i], dx.data());
  if (first_) {
    ScopedSpan span(s_.recorder, "embed", attrs(Category::ComputeEmbed));
    ops::embeddingBackward(wte_->grad.data(), wpe_->grad.data(), dx.data(), a.tokens.data(), B_, T_, C_);
  } else {
    s_.pp->send(dx.data(), NC, s_.coord.stage - 1, comm("send_grad", Category::CommPpSendrecv));
  }
}

template <class T>
void CpuStage<T>::layerBackward(const Layer& L, LayerActs& a, T* dx) {
  const size_t NC = static_cast<size_t>(N_) * C_;
  const bool tp = s_.tp->size() > 1;
  // dx holds the gradient of the layer output, which is also that of x2 through the residual.
  std::vector<T> dm(NC, T(0));
  std::vector<T> dprobs;
  if (!L.moe) {
    ScopedSpan span(s_.recorder, "ffn", attrs(Category::ComputeFfn, L.index));
    std::vector<T> dact(static_cast<size_t>(N_) * Fl_, T(0)), dpre(static_cast<size_t>(N_) * Fl_, T(0));
    ops::linearBackward(dact.data(), L.fcp_w->grad.data(), L.fcp_b->grad.data(), dx, a.act.data(),
                        L.fcp_w->value.data(), N_, Fl_, C_);
    ops::geluBackward(dpre.data(), a.pre.data(), dact.data(), dpre.size());
    ops::linearBackward(dm.data(), L.fc_w->grad.data(), L.fc_b->grad.data(), dpre.data(), a.ln2.data(),
                        L.fc_w->value.data(), N_, C_, Fl_);
  } else {
    // dm and dprobs are reduced together over the tp group: one all-reduce per MoE layer.
    dm.resize(NC + static_cast<size_t>(N_) * E_, T(0));
    T* dp = dm.data() + NC;
    if (dispatch_) {
      moeBackwardDispatch(L, a, dx, dm.data(), dp);
    } else {
      moeBackwardLocal(L, a, dx, dm.data(), dp);
    }
  }
  if (tp) {
    s_.tp->allReduceSum(dm.data(), dm.size(),
                        comm(L.moe ? "moe_allreduce" : "ffn_allreduce", Category::CommTpAllreduce, L.index));
  }
  {
    ScopedSpan span(s_.recorder, L.moe ? "router" : "ffn",
                    attrs(L.moe ? Category::ComputeRouter : Category::ComputeFfn, L.index));
    if (L.moe) {
      T* dp = dm.data() + NC;
      const double groups = static_cast<double>(c_.parallel.dp * c_.parallel.microbatches);
      const T daux = static_cast<T>(c_.model.aux_loss_coef / groups);
      ops::auxLossBackward(dp, a.f.data(), daux, N_, E_);
      std::vector<T> dlogits(static_cast<size_t>(N_) * E_, T(0));
      ops::softmaxBackward(dlogits.data(), dp, a.probs.data(), N_, E_);
      ops::linearBackward(dm.data(), L.router->grad.data(), static_cast<T*>(nullptr), dlogits.data(),
                          a.ln2.data(), L.router->value.data(), N_, C_, E_);
    }
    // dx becomes the gradient of x2: the residual plus LayerNorm 2's input gradient.
    ops::layerNormBackward(dx, L.ln2_w->grad.data(), L.ln2_b->grad.data(), dm.data(), a.x2.data(),
                           L.ln2_w->value.data(), a.ln2_mean.data(), a.ln2_rstd.data(), N_, C_);
  }
  std::vector<T> dln1(NC, T(0));
  {
    ScopedSpan span(s_.recorder, "attention", attrs(Category::ComputeAttention, L.index));
    std::vector<T> dout(static_cast<size_t>(N_) * Cl_, T(0)), dqkv(static_cast<size_t>(N_) * 3 * Cl_, T(0));
    ops::linearBackward(dout.data(), L.proj_w->grad.data(), L.proj_b->grad.data(), dx, a.o.data(),
                        L.proj_w->value.data(), N_, Cl_, C_);
    ops::attentionBackward(dqkv.data(), dout.data(), a.qkv.data(), a.att.data(), B_, T_, NHl_, D_);
    ops::linearBackward(dln1.data(), L.attn_w->grad.data(), L.attn_b->grad.data(), dqkv.data(), a.ln1.data(),
                        L.attn_w->value.data(), N_, C_, 3 * Cl_);
  }
  if (tp) s_.tp->allReduceSum(dln1.data(), NC, comm("attn_allreduce", Category::CommTpAllreduce, L.index));
  {
    ScopedSpan span(s_.recorder, "attention", attrs(Category::ComputeAttention, L.index));
    ops::layerNormBackward(dx, L.ln1_w->grad.data(), L.ln1_b->grad.data(), dln1.data(), a.x.data(),
                           L.ln1_w->value.data(), a.ln1_mean.data(), a.ln1_rstd.data(), N_, C_);
  }
}

template <class T>
void CpuStage<T>::expertBackward(const Expert& e, ExpertActs& x, const T* dy, T* dx) {
  if (x.m == 0) return;
  std::vector<T> dact(static_cast<size_t>(x.m) * F_, T(0)), dpre(static_cast<size_t>(x.m) * F_, T(0));
  ops::linearBackward(dact.data(), e.proj_w->grad.data(), e.proj_b->grad.data(), dy, x.act.data(),
                      e.proj_w->value.data(), x.m, F_, C_);
  ops::geluBackward(dpre.data(), x.pre.data(), dact.data(), dpre.size());
  ops::linearBackward(dx, e.fc_w->grad.data(), e.fc_b->grad.data(), dpre.data(), x.x.data(),
                      e.fc_w->value.data(), x.m, C_, F_);
}

template <class T>
void CpuStage<T>::moeBackwardLocal(const Layer& L, LayerActs& a, const T* dout, T* dm, T* dprobs) {
  for (size_t i = 0; i < L.experts.size(); ++i) {
    const Expert& e = L.experts[i];
    ExpertActs& x = a.experts[i];
    std::vector<T> dy(static_cast<size_t>(x.m) * C_, T(0)), dxg(static_cast<size_t>(x.m) * C_, T(0));
    {
      ScopedSpan span(s_.recorder, "scatter", attrs(Category::MoeSlice, L.index, e.index));
      ops::scatterAddWeightedBackward(dy.data(), dprobs, dout, x.y.data(), a.probs.data(), x.rows.data(), x.m,
                                      C_, E_, e.index);
    }
    {
      ScopedSpan span(s_.recorder, "expert", attrs(Category::ComputeExpert, L.index, e.index));
      expertBackward(e, x, dy.data(), dxg.data());
    }
    {
      ScopedSpan span(s_.recorder, "gather", attrs(Category::MoeSlice, L.index, e.index));
      ops::gatherRowsBackward(dm, dxg.data(), x.rows.data(), x.m, C_);
    }
  }
}

template <class T>
void CpuStage<T>::moeBackwardDispatch(const Layer& L, LayerActs& a, const T* dout, T* dm, T* dprobs) {
  const int epr = s_.layout->expertsPerRank();
  std::vector<T> dsend(a.returned.size(), T(0));
  {
    ScopedSpan span(s_.recorder, "combine", attrs(Category::MoePermute, L.index));
    size_t offset = 0;
    for (int e = 0; e < E_; ++e) {
      const auto& rows = a.rows[static_cast<size_t>(e)];
      ops::scatterAddWeightedBackward(dsend.data() + offset * C_, dprobs, dout,
                                      a.returned.data() + offset * C_, a.probs.data(), rows.data(),
                                      static_cast<int>(rows.size()), C_, E_, e);
      offset += rows.size();
    }
  }
  std::vector<size_t> send_elems, recv_elems;
  std::vector<T> drecv(peerElements(a, send_elems, recv_elems) * C_);
  s_.dp->allToAll(dsend.data(), send_elems.data(), drecv.data(), recv_elems.data(),
                  comm("dispatch_grad", Category::CommEpAlltoall, L.index));
  std::vector<std::vector<T>> dy(static_cast<size_t>(epr)), dxg(static_cast<size_t>(epr));
  {
    ScopedSpan span(s_.recorder, "expert_layout", attrs(Category::MoePermute, L.index));
    for (int le = 0; le < epr; ++le) {
      dy[static_cast<size_t>(le)].resize(static_cast<size_t>(a.experts[static_cast<size_t>(le)].m) * C_);
      peerToExpert(a, drecv.data(), le, dy[static_cast<size_t>(le)].data());
    }
  }
  for (int le = 0; le < epr; ++le) {
    const Expert& e = L.experts[static_cast<size_t>(le)];
    ScopedSpan span(s_.recorder, "expert", attrs(Category::ComputeExpert, L.index, e.index));
    ExpertActs& x = a.experts[static_cast<size_t>(le)];
    dxg[static_cast<size_t>(le)].assign(static_cast<size_t>(x.m) * C_, T(0));
    expertBackward(e, x, dy[static_cast<size_t>(le)].data(), dxg[static_cast<size_t>(le)].data());
  }
  {
    ScopedSpan span(s_.recorder, "return_layout", attrs(Category::MoePermute, L.index));
    for (int le = 0; le < epr; ++le) expertToPeer(a, dxg[static_cast<size_t>(le)].data(), le, drecv.data());
  }
  std::vector<T> dreturned(a.returned.size());
  s_.dp->allToAll(drecv.data(), recv_elems.data(), dreturned.data(), send_elems.data(),
                  comm("return_grad", Category::CommEpAlltoall, L.index));
  {
    ScopedSpan span(s_.recorder, "dispatch_layout", attrs(Category::MoePermute, L.index));
    size_t offset = 0;
    for (int e = 0; e < E_; ++e) {
      const auto& rows = a.rows[static_cast<size_t>(e)];
      ops::gatherRowsBackward(dm, dreturned.data() + offset * C_, rows.data(), static_cast<int>(rows.size()),
                              C_);
      offset += rows.size();
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Gradient reduction and the update

template <class T>
StepLosses CpuStage<T>::reduceGradients() {
  microbatch_ = -1;
  phase_ = Phase::Optimizer;
  if (s_.dp->size() > 1) {
    size_t n = 0;
    for (const auto& p : params_) n += p.dp_unique ? 0 : p.grad.size();
    scratch_.resize(n);
    {
      ScopedSpan span(s_.recorder, "pack_grads", attrs(Category::Optimizer));
      size_t off = 0;
      for (const auto& p : params_) {
        if (p.dp_unique) continue;
        std::copy(p.grad.begin(), p.grad.end(), scratch_.begin() + static_cast<std::ptrdiff_t>(off));
        off += p.grad.size();
      }
    }
    s_.dp->allReduceSum(scratch_.data(), n, comm("grad_allreduce", Category::CommDpAllreduce));
    ScopedSpan span(s_.recorder, "unpack_grads", attrs(Category::Optimizer));
    size_t off = 0;
    for (auto& p : params_) {
      if (p.dp_unique) continue;
      std::copy_n(scratch_.begin() + static_cast<std::ptrdiff_t>(off), p.grad.size(), p.grad.begin());
      off += p.grad.size();
    }
  }
  double sums[3] = {0, 0, 0};  // squared gradient norm, CE sum, aux sum: each counted once
  {
    ScopedSpan span(s_.recorder, "grad_norm", attrs(Category::Optimizer));
    for (const auto& p : params_) {
      const bool counted = (p.tp_unique || s_.coord.tp == 0) && (p.dp_unique || s_.coord.dp == 0);
      if (counted) sums[0] += ops::sumOfSquares(p.grad.data(), p.grad.size());
    }
    if (last_ && s_.coord.tp == 0) sums[1] = ce_sum_;
    sums[2] = aux_sum_;
  }
  s_.world->allReduceSum(sums, 3, comm("loss_norm_allreduce", Category::CommDpAllreduce));
  StepLosses losses;
  losses.grad_norm = std::sqrt(sums[0]);
  losses.ce = sums[1] / static_cast<double>(c_.tokensPerStep());
  losses.aux = sums[2] / static_cast<double>(c_.parallel.dp * c_.parallel.microbatches);
  losses.loss = losses.ce + c_.model.aux_loss_coef * losses.aux;
  return losses;
}

template <class T>
StepLosses CpuStage<T>::endStep() {
  const StepLosses losses = reduceGradients();
  ScopedSpan span(s_.recorder, "adamw", attrs(Category::Optimizer));
  const double scale = ops::clipCoefficient(losses.grad_norm, c_.train.grad_clip);
  ++updates_;
  for (auto& p : params_) {
    ops::AdamWParams hp;
    hp.lr = c_.train.lr;
    hp.beta1 = c_.train.beta1;
    hp.beta2 = c_.train.beta2;
    hp.eps = c_.train.eps;
    hp.weightDecay = p.decay ? c_.train.weight_decay : 0.0;
    ops::adamwStep(p.value.data(), p.grad.data(), p.m.data(), p.v.data(), p.value.size(), hp, updates_,
                   scale);
  }
  return losses;
}

template class CpuStage<float>;
template class CpuStage<double>;

}  // namespace moescope::engine
