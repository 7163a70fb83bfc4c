#include "engine/cuda/cuda_stage.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "engine/cpu/ops.h"
#include "engine/cuda/adamw.h"
#include "engine/cuda/attention_cublas.h"
#include "engine/cuda/aux_loss.h"
#include "engine/cuda/cross_entropy.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/elementwise.h"
#include "engine/cuda/embedding.h"
#include "engine/cuda/flash_attention.h"
#include "engine/cuda/gelu.h"
#include "engine/cuda/global_norm.h"
#include "engine/cuda/layernorm.h"
#include "engine/cuda/linear.h"
#include "engine/cuda/moe_slicing.h"
#include "engine/cuda/nccl_communicator.h"
#include "engine/cuda/residual.h"
#include "engine/cuda/router.h"
#include "engine/cuda/sum.h"
#include "engine/stage_parameters.h"
#include "engine/stage_position.h"
#include "engine/stage_shape.h"

namespace moescope::engine::cuda {

namespace {

using tracer::Category;
using tracer::Phase;
using Bf16 = __nv_bfloat16;

// Parameters start at multiples of 64 elements (256 bytes of fp32), which cuBLASLt's fastest kernels
// need; the padding holds zeros that the updates leave at zero.
constexpr size_t kParamAlign = 64;

// A device array that only grows; freed on destruction.
template <class U>
class DeviceArray {
 public:
  DeviceArray() = default;
  ~DeviceArray() { release(); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  // At least n elements; the contents are lost when it grows.
  U* reserve(size_t n) {
    if (n > n_) {
      release();
      MOESCOPE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(n, 1) * sizeof(U)));
      n_ = n;
    }
    return p_;
  }
  U* get() const { return p_; }

 private:
  void release() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  U* p_ = nullptr;
  size_t n_ = 0;
};

// A span that, when tracing, ends once the GPU finished the work enqueued inside it.
class GpuSpan {
 public:
  GpuSpan(tracer::TrackRecorder* recorder, cudaStream_t stream, std::string_view name,
          const tracer::SpanAttrs& attrs)
      : recorder_(recorder),
        stream_(stream),
        name_(name),
        attrs_(attrs),
        start_(recorder ? tracer::nowNs() : 0),
        id_(recorder ? recorder->open(name, attrs.category) : 0) {}
  ~GpuSpan() {
    if (!recorder_) return;
    recorder_->close();  // the GPU tracer ties the kernels launched since open() to this span
    // With the GPU tracer on, the span is the launch and CUPTI gives the GPU extent; without it the
    // span waits for its work, so host time stands for GPU time.
    if (!tracer::spanHooks()) cudaStreamSynchronize(stream_);
    recorder_->record(name_, attrs_, start_, tracer::nowNs(), id_);
  }
  GpuSpan(const GpuSpan&) = delete;
  GpuSpan& operator=(const GpuSpan&) = delete;

 private:
  tracer::TrackRecorder* recorder_;
  cudaStream_t stream_;
  std::string_view name_;
  tracer::SpanAttrs attrs_;
  int64_t start_;
  uint64_t id_;
};

template <class T>
constexpr DType commType() {
  return std::is_same_v<T, float> ? DType::F32 : DType::BF16;
}

size_t roundUp(size_t n) {
  return (n + kParamAlign - 1) / kParamAlign * kParamAlign;
}

template <typename T>
class CudaStage final : public StageExecutor, StagePosition, StageShape {
 public:
  CudaStage(const RankSetup& setup, int device);
  ~CudaStage() override;

  void initialize(uint64_t seed) override;
  void loadWeights(const ModelWeights& full) override;
  void storeWeights(ModelWeights& full) const override;
  void setRecorder(tracer::TrackRecorder* recorder) override { s_.recorder = recorder; }
  void beginStep(int step) override;
  void forward(int microbatch) override;
  void backward(int microbatch) override;
  StepLosses endStep() override;

 private:
  struct Param {
    StageParam sp;
    size_t offset = 0, n = 0;
  };
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
    std::vector<Expert> experts;
  };
  struct LayerActs {
    const T* x = nullptr;  // the layer's input: the previous layer's output or the stage's input
    DeviceArray<T> ln1, qkv, o, x2, ln2, pre, act, out, router_logits;
    DeviceArray<float> ln1_mean, ln1_rstd, ln2_mean, ln2_rstd, probs, f, prob_mean, aux;
    DeviceArray<T> att;      // attention probabilities [B, NH/tp, T, T] (through cuBLASLt)
    DeviceArray<float> lse;  // each attention row's log-sum-exp [B, NH/tp, T] (fused kernels)
    DeviceArray<int32_t> choice, order, offsets, slot_of;
    DeviceArray<uint8_t> keep;
    std::vector<int32_t> offsets_host;  // [E+1], read once per layer and micro-batch
    // This rank's expert rows, contiguous by local expert: row_begin[le]..row_begin[le+1].
    int j0 = 0, rows = 0;
    std::vector<int> row_begin;
    DeviceArray<T> xg, preg, actg, yg;
    // DPMoE: assignments sent, rows per peer, received counts [peer][local expert], returned outputs.
    int total = 0;
    std::vector<size_t> send_elems, recv_elems;
    std::vector<int32_t> recv_counts;
    DeviceArray<T> returned;
  };
  struct MicroActs {
    std::vector<int32_t> tokens_host, targets_host;
    DeviceArray<int32_t> tokens, targets;
    DeviceArray<T> input, lnf, logits, dx;
    DeviceArray<float> lnf_mean, lnf_rstd, losses;
    const T* out = nullptr;
    std::vector<LayerActs> layers;
  };

  GpuSpan span(std::string_view name, Category category, int layer = -1, int expert = -1) const {
    return GpuSpan(s_.recorder, stream_, name, attrs(category, layer, expert));
  }
  const T* w(const Param* p) const;
  float* g(const Param* p) const { return grad_.get() + p->offset; }
  void zero(void* p, size_t bytes) const {
    if (bytes > 0) MOESCOPE_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
  }
  template <class U>
  void zeroN(U* p, size_t n) const {
    zero(p, n * sizeof(U));
  }
  void refreshComputeCopy();
  void uploadParam(const Param& p, const std::vector<float>& local);
  void loadBatch(MicroActs& a, int mb);

  void layerForward(const Layer& L, LayerActs& a, const T* x);
  void layerBackward(const Layer& L, LayerActs& a, T* dx);
  void routerForward(const Layer& L, LayerActs& a);
  void moeForwardLocal(const Layer& L, LayerActs& a);
  void moeForwardDispatch(const Layer& L, LayerActs& a);
  void moeBackwardLocal(const Layer& L, LayerActs& a, const T* dout, T* dm, float* dprobs);
  void moeBackwardDispatch(const Layer& L, LayerActs& a, const T* dout, T* dm, float* dprobs);
  void expertsForward(const Layer& L, LayerActs& a);
  void expertsBackward(const Layer& L, LayerActs& a);  // dyg_ -> dxg_ (zeroed here)
  // DPMoE: between the received layout [peer][local expert] and the experts' [local expert][peer].
  void permute(const LayerActs& a, T* experts, T* received, bool toExperts);

  RankSetup s_;
  const Config& c_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  std::vector<NcclCommunicator*> comms_;
  NcclWorld* world_ = nullptr;
  std::unique_ptr<CublasLt> lt_;
  int epr_ = 0, peers_ = 1;
  size_t max_rows_ = 0;  // this rank's expert rows of one layer, at most

  std::vector<Param> params_;
  size_t total_ = 0, dp_count_ = 0;  // flat sizes: all parameters, and the dp-replicated prefix
  DeviceArray<float> master_, grad_, m_, v_;
  DeviceArray<Bf16> copy_;  // bf16 compute copy (T = bf16)
  const Param *wte_ = nullptr, *wpe_ = nullptr, *lnf_w_ = nullptr, *lnf_b_ = nullptr, *lm_head_ = nullptr;
  std::vector<Layer> layers_;
  std::vector<MicroActs> acts_;

  // Scratch shared by the micro-batches.
  DeviceArray<T> y_, z_, dm_, dln1_, dlnf_, dout_, dqkv_, dact_, dpre_, drouter_t_, dyg_, dxg_;
  DeviceArray<T> send_, recv_, dsend_, drecv_, dreturned_;
  DeviceArray<float> dprobs_, drouter_, coef_;
  DeviceArray<unsigned char> att_ws_;  // attention workspace
  DeviceArray<double> sums_;           // squared gradient norm, CE sum, aux sum
  DeviceArray<int32_t> counts_send_, counts_recv_;
  int updates_ = 0;
  static constexpr bool kFlashCapable = std::is_same_v<T, Bf16>;
  // The fused attention kernels where they apply (bf16, head size 64 or 128); cuBLASLt otherwise.
  const bool flash_ = kFlashCapable && flashAttentionSupports(D_) && flashAttentionAvailable();
};

template <typename T>
CudaStage<T>::CudaStage(const RankSetup& setup, int device)
    : StageShape(setup), s_(setup), c_(*setup.config), device_(device) {
  MOESCOPE_CUDA_CHECK(cudaSetDevice(device_));
  MOESCOPE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  for (Communicator* c : {s_.world, s_.tp, s_.dp, s_.pp}) {
    auto* n = dynamic_cast<NcclCommunicator*>(c);
    if (!n) throw std::logic_error("CudaStage: the communicators must be NCCL communicators");
    n->setStream(stream_);
    comms_.push_back(n);
  }
  world_ = comms_[0]->world();
  lt_ = std::make_unique<CublasLt>();

  const auto& m = c_.model;
  const RankCoord& rc = s_.coord;
  epr_ = s_.layout->expertsPerRank();
  peers_ = s_.dp->size();
  if (E_ > 0) {
    max_rows_ = static_cast<size_t>(N_) * static_cast<size_t>(std::min(K_, epr_));
    if (dispatch_) max_rows_ *= static_cast<size_t>(peers_);
  }

  // Parameters: dp-replicated ones first, so the gradient all-reduce is one call over a prefix.
  const auto plan = stageParameters(c_, *s_.layout, rc);
  params_.reserve(plan.size());
  for (const auto& sp : plan) {
    Param p;
    p.sp = sp;
    int64_t n = 1;
    for (int64_t d : shardShape(sp.spec.shape, sp.shard)) n *= d;
    p.n = static_cast<size_t>(n);
    params_.push_back(std::move(p));
  }
  for (bool unique : {false, true}) {
    for (auto& p : params_) {
      if (p.sp.dp_unique != unique) continue;
      p.offset = total_;
      total_ += roundUp(p.n);
    }
    if (!unique) dp_count_ = total_;
  }
  master_.reserve(total_);
  grad_.reserve(total_);
  m_.reserve(total_);
  v_.reserve(total_);
  zeroN(master_.get(), total_);
  zeroN(grad_.get(), total_);
  zeroN(m_.get(), total_);
  zeroN(v_.get(), total_);
  if constexpr (std::is_same_v<T, Bf16>) {
    copy_.reserve(total_);
    zeroN(copy_.get(), total_);
  }

  StageWiring<Layer, Expert, const Param*> wiring(m, *s_.layout, rc.stage);
  for (const Param& p : params_) wiring.add(p.sp, &p);
  wte_ = wiring.wte;
  wpe_ = wiring.wpe;
  lnf_w_ = wiring.lnf_w;
  lnf_b_ = wiring.lnf_b;
  lm_head_ = wiring.lm_head;
  layers_ = wiring.finish();
  acts_.resize(static_cast<size_t>(c_.parallel.microbatches));
  for (auto& a : acts_) a.layers.resize(layers_.size());

  const size_t NC = static_cast<size_t>(N_) * C_;
  const size_t NE = static_cast<size_t>(N_) * std::max(E_, 1);
  y_.reserve(NC);
  z_.reserve(NC);
  dm_.reserve(NC + (std::is_same_v<T, float> ? NE : 0));
  dln1_.reserve(NC);
  dout_.reserve(static_cast<size_t>(N_) * Cl_);
  dqkv_.reserve(static_cast<size_t>(N_) * 3 * Cl_);
  const size_t ffn = std::max(static_cast<size_t>(N_) * Fl_, max_rows_ * F_);
  dact_.reserve(ffn);
  dpre_.reserve(ffn);
  att_ws_.reserve(flash_ ? flashAttentionWorkspaceBytes(B_, T_, NHl_, D_)
                         : attentionCublasWorkspaceBytes(B_, T_, NHl_, D_, sizeof(T)));
  coef_.reserve(1);
  sums_.reserve(3);
  if (last_) {
    dlnf_.reserve(NC);
  }
  if (E_ > 0) {
    dprobs_.reserve(NE);
    drouter_.reserve(NE);
    drouter_t_.reserve(NE);
    dyg_.reserve(max_rows_ * C_);
    dxg_.reserve(max_rows_ * C_);
  }
  if (dispatch_) {
    const size_t assignments = static_cast<size_t>(N_) * K_;
    send_.reserve(assignments * C_);
    dsend_.reserve(assignments * C_);
    dreturned_.reserve(assignments * C_);
    recv_.reserve(max_rows_ * C_);
    drecv_.reserve(max_rows_ * C_);
    counts_send_.reserve(static_cast<size_t>(E_));
    counts_recv_.reserve(static_cast<size_t>(E_));
  }
  MOESCOPE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

template <typename T>
CudaStage<T>::~CudaStage() {
  // A failing or cancelled run may leave NCCL kernels waiting on a peer: end them before freeing memory
  // (cudaFree waits for the device).
  if (std::uncaught_exceptions() > 0 || world_->aborted()) {
    world_->abort("a rank failed");
    for (NcclCommunicator* c : comms_) c->abortNow();
  } else {
    cudaStreamSynchronize(stream_);
  }
  cudaStreamDestroy(stream_);
}

template <typename T>
const T* CudaStage<T>::w(const Param* p) const {
  if constexpr (std::is_same_v<T, float>) {
    return master_.get() + p->offset;
  } else {
    return copy_.get() + p->offset;
  }
}

template <typename T>
void CudaStage<T>::refreshComputeCopy() {
  if constexpr (std::is_same_v<T, Bf16>) convertToBf16(copy_.get(), master_.get(), total_, stream_);
  MOESCOPE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

template <typename T>
void CudaStage<T>::uploadParam(const Param& p, const std::vector<float>& local) {
  if (local.size() != p.n) throw std::logic_error("CudaStage: shard size mismatch for " + p.sp.spec.name);
  MOESCOPE_CUDA_CHECK(
      cudaMemcpy(master_.get() + p.offset, local.data(), p.n * sizeof(float), cudaMemcpyHostToDevice));
}

template <typename T>
void CudaStage<T>::initialize(uint64_t seed) {
  // The host generator is the CPU backend's (so both start from the same model); it makes about 20 M
  // values/s per core, so the tensors are generated on several threads, this rank's share of the cores.
  const int world = std::max(1, s_.world->size());
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t workers =
      std::min<size_t>(params_.size(), std::max<size_t>(1, cores / static_cast<unsigned>(world)));
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex mutex;
  auto work = [&] {
    try {
      MOESCOPE_CUDA_CHECK(cudaSetDevice(device_));
      for (size_t i = next++; i < params_.size(); i = next++) {
        const Param& p = params_[i];
        uploadParam(p, sliceShard(initialValues(p.sp.spec, seed), p.sp.spec.shape, p.sp.shard));
      }
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
  refreshComputeCopy();
}

template <typename T>
void CudaStage<T>::loadWeights(const ModelWeights& full) {
  std::map<std::string, const NamedTensor*> byName;
  for (const auto& t : full) byName[t.name] = &t;
  for (const auto& p : params_) {
    auto it = byName.find(p.sp.spec.name);
    if (it == byName.end())
      throw std::invalid_argument("loadWeights: tensor '" + p.sp.spec.name + "' is missing");
    uploadParam(p, sliceShard(it->second->data, p.sp.spec.shape, p.sp.shard));
  }
  refreshComputeCopy();
}

template <typename T>
void CudaStage<T>::storeWeights(ModelWeights& full) const {
  MOESCOPE_CUDA_CHECK(cudaSetDevice(device_));
  MOESCOPE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::map<std::string, NamedTensor*> byName;
  for (auto& t : full) byName[t.name] = &t;
  for (const auto& p : params_) {
    auto it = byName.find(p.sp.spec.name);
    if (it == byName.end())
      throw std::invalid_argument("storeWeights: tensor '" + p.sp.spec.name + "' is missing");
    std::vector<float> local(p.n);
    MOESCOPE_CUDA_CHECK(
        cudaMemcpy(local.data(), master_.get() + p.offset, p.n * sizeof(float), cudaMemcpyDeviceToHost));
    placeShard(it->second->data, p.sp.spec.shape, p.sp.shard, local);
  }
}

template <typename T>
void CudaStage<T>::beginStep(int step) {
  step_ = step;
  zeroN(grad_.get(), total_);
  zeroN(sums_.get(), 3);
}

template <typename T>
void CudaStage<T>::loadBatch(MicroActs& a, int mb) {
  a.tokens_host.resize(static_cast<size_t>(N_));
  a.targets_host.resize(static_cast<size_t>(N_));
  for (int row = 0; row < B_; ++row) {
    const int64_t j = sequenceIndex(c_, step_, s_.coord.dp, mb, row);
    s_.data->sequence(j, a.tokens_host.data() + row * T_, a.targets_host.data() + row * T_);
  }
  MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(a.tokens.reserve(static_cast<size_t>(N_)), a.tokens_host.data(),
                                      static_cast<size_t>(N_) * sizeof(int32_t), cudaMemcpyHostToDevice,
                                      stream_));
  MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(a.targets.reserve(static_cast<size_t>(N_)), a.targets_host.data(),
                                      static_cast<size_t>(N_) * sizeof(int32_t), cudaMemcpyHostToDevice,
                                      stream_));
}

// ---------------------------------------------------------------------------------------------------
// Forward

template <typename T>
void CudaStage<T>::forward(int mb) {
  microbatch_ = mb;
  phase_ = Phase::Forward;
  MicroActs& a = acts_[static_cast<size_t>(mb)];
  const size_t NC = static_cast<size_t>(N_) * C_;
  if (first_ || last_) loadBatch(a, mb);
  T* input = a.input.reserve(NC);
  if (first_) {
    auto sp = span("embed", Category::ComputeEmbed);
    embeddingForward(input, a.tokens.get(), w(wte_), w(wpe_), B_, T_, C_, stream_);
  } else {
    s_.pp->recv(input, NC, commType<T>(), s_.coord.stage - 1,
                comm("recv_activation", Category::CommPpSendrecv));
  }
  const T* x = input;
  for (size_t i = 0; i < layers_.size(); ++i) {
    layerForward(layers_[i], a.layers[i], x);
    x = a.layers[i].out.get();
  }
  a.out = x;
  if (last_) {
    auto sp = span("loss", Category::ComputeLoss);
    layerNormForward(a.lnf.reserve(NC), a.lnf_mean.reserve(static_cast<size_t>(N_)),
                     a.lnf_rstd.reserve(static_cast<size_t>(N_)), x, w(lnf_w_), w(lnf_b_), N_, C_, stream_);
    linearForward<T>(*lt_, a.logits.reserve(static_cast<size_t>(N_) * V_), a.lnf.get(), w(lm_head_), nullptr,
                     N_, C_, V_, stream_);
    // The loss and, over the logits, their gradient (the backward pass starts from it).
    const float scale = static_cast<float>(1.0 / static_cast<double>(c_.tokensPerStep()));
    crossEntropyForwardBackward(a.losses.reserve(static_cast<size_t>(N_)), a.logits.get(), a.targets.get(),
                                scale, N_, V_, stream_);
    if (s_.coord.tp == 0) accumulateSum(sums_.get() + 1, a.losses.get(), static_cast<size_t>(N_), stream_);
  } else {
    s_.pp->send(x, NC, commType<T>(), s_.coord.stage + 1, comm("send_activation", Category::CommPpSendrecv));
  }
}

template <typename T>
void CudaStage<T>::layerForward(const Layer& L, LayerActs& a, const T* x) {
  const size_t NC = static_cast<size_t>(N_) * C_;
  const size_t n = static_cast<size_t>(N_);
  const bool tp = s_.tp->size() > 1;
  a.x = x;
  {
    auto sp = span("attention", Category::ComputeAttention, L.index);
    layerNormForward(a.ln1.reserve(NC), a.ln1_mean.reserve(n), a.ln1_rstd.reserve(n), x, w(L.ln1_w),
                     w(L.ln1_b), N_, C_, stream_);
    linearForward<T>(*lt_, a.qkv.reserve(n * 3 * Cl_), a.ln1.get(), w(L.attn_w), w(L.attn_b), N_, C_, 3 * Cl_,
                     stream_);
    if constexpr (kFlashCapable) {
      if (flash_) {
        flashAttentionForward(a.o.reserve(n * Cl_), a.lse.reserve(static_cast<size_t>(B_) * NHl_ * T_),
                              a.qkv.get(), B_, T_, NHl_, D_, stream_);
      }
    }
    if (!flash_) {
      attentionCublasForward(*lt_, a.o.reserve(n * Cl_),
                             a.att.reserve(static_cast<size_t>(B_) * NHl_ * T_ * T_), a.qkv.get(),
                             att_ws_.get(), B_, T_, NHl_, D_, stream_);
    }
    linearForward<T>(*lt_, y_.get(), a.o.get(), w(L.proj_w), nullptr, N_, Cl_, C_, stream_);
  }
  if (tp)
    s_.tp->allReduceSum(y_.get(), NC, commType<T>(),
                        comm("attn_allreduce", Category::CommTpAllreduce, L.index));
  {
    auto sp = span(L.moe ? "router" : "ffn", L.moe ? Category::ComputeRouter : Category::ComputeFfn, L.index);
    residualAdd(a.x2.reserve(NC), x, y_.get(), w(L.proj_b), N_, C_, stream_);
    layerNormForward(a.ln2.reserve(NC), a.ln2_mean.reserve(n), a.ln2_rstd.reserve(n), a.x2.get(), w(L.ln2_w),
                     w(L.ln2_b), N_, C_, stream_);
    if (!L.moe) {
      linearForward<T>(*lt_, a.pre.reserve(n * Fl_), a.ln2.get(), w(L.fc_w), w(L.fc_b), N_, C_, Fl_, stream_);
      geluForward(a.act.reserve(n * Fl_), a.pre.get(), n * Fl_, stream_);
      linearForward<T>(*lt_, z_.get(), a.act.get(), w(L.fcp_w), nullptr, N_, Fl_, C_, stream_);
    } else {
      routerForward(L, a);
    }
  }
  if (L.moe) {
    zeroN(z_.get(), NC);
    if (dispatch_) {
      moeForwardDispatch(L, a);
    } else {
      moeForwardLocal(L, a);
    }
  }
  if (tp) {
    s_.tp->allReduceSum(z_.get(), NC, commType<T>(),
                        comm(L.moe ? "moe_allreduce" : "ffn_allreduce", Category::CommTpAllreduce, L.index));
  }
  {
    const Category category = !L.moe      ? Category::ComputeFfn
                              : dispatch_ ? Category::MoePermute
                                          : Category::MoeSlice;
    auto sp = span(L.moe ? "combine" : "ffn", category, L.index);
    residualAdd(a.out.reserve(NC), a.x2.get(), z_.get(), L.moe ? nullptr : w(L.fcp_b), N_, C_, stream_);
  }
}

template <typename T>
void CudaStage<T>::routerForward(const Layer& L, LayerActs& a) {
  const size_t n = static_cast<size_t>(N_);
  linearForward<T>(*lt_, a.router_logits.reserve(n * E_), a.ln2.get(), w(L.router), nullptr, N_, C_, E_,
                   stream_);
  routerSoftmaxTopK(a.probs.reserve(n * E_), a.choice.reserve(n * K_), a.router_logits.get(), N_, E_, K_,
                    stream_);
  const int capacity = cpu::expertCapacity(c_.model.capacity_factor, N_, K_, E_);
  routerCapacity(a.keep.reserve(n * K_), nullptr, nullptr, a.choice.get(), N_, E_, K_, capacity, stream_);
  auxLossForward(a.f.reserve(static_cast<size_t>(E_)), a.prob_mean.reserve(static_cast<size_t>(E_)),
                 a.aux.reserve(1), a.probs.get(), a.choice.get(), N_, E_, K_, stream_);
  if (s_.coord.tp == 0) accumulateSum(sums_.get() + 2, a.aux.get(), 1, stream_);
  buildExpertOrder(a.order.reserve(n * K_), a.offsets.reserve(static_cast<size_t>(E_) + 1),
                   a.slot_of.reserve(n * K_), a.choice.get(), a.keep.get(), N_, E_, K_, stream_);
  // The one host synchronisation of the layer: the experts' slot ranges size their matrix products.
  a.offsets_host.resize(static_cast<size_t>(E_) + 1);
  MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(a.offsets_host.data(), a.offsets.get(),
                                      a.offsets_host.size() * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                      stream_));
  world_->synchronize(stream_);
}

template <typename T>
void CudaStage<T>::expertsForward(const Layer& L, LayerActs& a) {
  for (size_t le = 0; le < L.experts.size(); ++le) {
    const Expert& e = L.experts[le];
    const int r0 = a.row_begin[le];
    const int m = a.row_begin[le + 1] - r0;
    auto sp = span("expert", Category::ComputeExpert, L.index, e.index);
    if (m == 0) continue;
    const size_t rc = static_cast<size_t>(r0) * C_, rf = static_cast<size_t>(r0) * F_;
    linearForward<T>(*lt_, a.preg.get() + rf, a.xg.get() + rc, w(e.fc_w), w(e.fc_b), m, C_, F_, stream_);
    geluForward(a.actg.get() + rf, a.preg.get() + rf, static_cast<size_t>(m) * F_, stream_);
    linearForward<T>(*lt_, a.yg.get() + rc, a.actg.get() + rf, w(e.proj_w), w(e.proj_b), m, F_, C_, stream_);
  }
}

template <typename T>
void CudaStage<T>::moeForwardLocal(const Layer& L, LayerActs& a) {
  const int e0 = L.experts.front().index;
  const auto& off = a.offsets_host;
  a.j0 = off[static_cast<size_t>(e0)];
  a.rows = off[static_cast<size_t>(e0 + epr_)] - a.j0;
  a.row_begin.resize(static_cast<size_t>(epr_) + 1);
  for (int le = 0; le <= epr_; ++le)
    a.row_begin[static_cast<size_t>(le)] = off[static_cast<size_t>(e0 + le)] - a.j0;
  const size_t rows = static_cast<size_t>(a.rows);
  a.xg.reserve(max_rows_ * C_);
  a.preg.reserve(max_rows_ * F_);
  a.actg.reserve(max_rows_ * F_);
  a.yg.reserve(max_rows_ * C_);
  {
    auto sp = span("gather", Category::MoeSlice, L.index);
    gatherAssignments(a.xg.get(), a.ln2.get(), a.order.get(), a.j0, a.rows, K_, C_, stream_);
  }
  expertsForward(L, a);
  {
    auto sp = span("scatter", Category::MoeSlice, L.index);
    combineAssignments(z_.get(), a.yg.get(), a.probs.get(), a.choice.get(), a.slot_of.get(), a.j0, a.rows, N_,
                       E_, K_, C_, stream_);
  }
  (void)rows;
}

template <typename T>
void CudaStage<T>::permute(const LayerActs& a, T* experts, T* received, bool toExperts) {
  // received: [peer][local expert][rows]; experts: [local expert][peer][rows].
  std::vector<size_t> peer_start(static_cast<size_t>(peers_) + 1, 0);
  for (int p = 0; p < peers_; ++p)
    peer_start[static_cast<size_t>(p) + 1] =
        peer_start[static_cast<size_t>(p)] + a.recv_elems[static_cast<size_t>(p)] / C_;
  size_t row = 0;
  for (int le = 0; le < epr_; ++le) {
    for (int p = 0; p < peers_; ++p) {
      size_t block = peer_start[static_cast<size_t>(p)];
      for (int l = 0; l < le; ++l)
        block += static_cast<size_t>(a.recv_counts[static_cast<size_t>(p * epr_ + l)]);
      const size_t cnt = static_cast<size_t>(a.recv_counts[static_cast<size_t>(p * epr_ + le)]);
      if (cnt > 0) {
        T* e = experts + row * C_;
        T* r = received + block * C_;
        MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(toExperts ? e : r, toExperts ? r : e, cnt * C_ * sizeof(T),
                                            cudaMemcpyDeviceToDevice, stream_));
      }
      row += cnt;
    }
  }
}

template <typename T>
void CudaStage<T>::moeForwardDispatch(const Layer& L, LayerActs& a) {
  const auto& off = a.offsets_host;
  a.total = off[static_cast<size_t>(E_)];
  a.send_elems.assign(static_cast<size_t>(peers_), 0);
  a.recv_elems.assign(static_cast<size_t>(peers_), 0);
  std::vector<int32_t> counts(static_cast<size_t>(E_));
  {
    auto sp = span("dispatch_layout", Category::MoePermute, L.index);
    gatherAssignments(send_.get(), a.ln2.get(), a.order.get(), 0, a.total, K_, C_, stream_);
    for (int e = 0; e < E_; ++e)
      counts[static_cast<size_t>(e)] = off[static_cast<size_t>(e) + 1] - off[static_cast<size_t>(e)];
    for (int p = 0; p < peers_; ++p) {
      a.send_elems[static_cast<size_t>(p)] =
          static_cast<size_t>(off[static_cast<size_t>((p + 1) * epr_)] - off[static_cast<size_t>(p * epr_)]) *
          C_;
    }
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(counts_send_.get(), counts.data(), counts.size() * sizeof(int32_t),
                                        cudaMemcpyHostToDevice, stream_));
  }
  // Tokens per (peer, local expert), then the rows themselves.
  std::vector<size_t> blocks(static_cast<size_t>(peers_), static_cast<size_t>(epr_));
  s_.dp->allToAll(counts_send_.get(), blocks.data(), counts_recv_.get(), blocks.data(), DType::I32,
                  comm("dispatch_counts", Category::CommEpAlltoall, L.index));
  a.recv_counts.resize(static_cast<size_t>(peers_ * epr_));
  MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(a.recv_counts.data(), counts_recv_.get(),
                                      a.recv_counts.size() * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                      stream_));
  world_->synchronize(stream_);
  a.row_begin.assign(static_cast<size_t>(epr_) + 1, 0);
  for (int p = 0; p < peers_; ++p) {
    for (int le = 0; le < epr_; ++le) {
      const int cnt = a.recv_counts[static_cast<size_t>(p * epr_ + le)];
      a.recv_elems[static_cast<size_t>(p)] += static_cast<size_t>(cnt) * C_;
      a.row_begin[static_cast<size_t>(le) + 1] += cnt;
    }
  }
  for (int le = 0; le < epr_; ++le)
    a.row_begin[static_cast<size_t>(le) + 1] += a.row_begin[static_cast<size_t>(le)];
  a.rows = a.row_begin.back();
  s_.dp->allToAll(send_.get(), a.send_elems.data(), recv_.get(), a.recv_elems.data(), commType<T>(),
                  comm("dispatch", Category::CommEpAlltoall, L.index));
  a.xg.reserve(max_rows_ * C_);
  a.preg.reserve(max_rows_ * F_);
  a.actg.reserve(max_rows_ * F_);
  a.yg.reserve(max_rows_ * C_);
  {
    auto sp = span("expert_layout", Category::MoePermute, L.index);
    permute(a, a.xg.get(), recv_.get(), true);
  }
  expertsForward(L, a);
  {
    auto sp = span("return_layout", Category::MoePermute, L.index);
    permute(a, a.yg.get(), recv_.get(), false);
  }
  a.returned.reserve(static_cast<size_t>(N_) * K_ * C_);
  s_.dp->allToAll(recv_.get(), a.recv_elems.data(), a.returned.get(), a.send_elems.data(), commType<T>(),
                  comm("return", Category::CommEpAlltoall, L.index));
  {
    auto sp = span("combine", Category::MoePermute, L.index);
    combineAssignments(z_.get(), a.returned.get(), a.probs.get(), a.choice.get(), a.slot_of.get(), 0, a.total,
                       N_, E_, K_, C_, stream_);
  }
}

// ---------------------------------------------------------------------------------------------------
// Backward

template <typename T>
void CudaStage<T>::backward(int mb) {
  microbatch_ = mb;
  phase_ = Phase::Backward;
  MicroActs& a = acts_[static_cast<size_t>(mb)];
  const size_t NC = static_cast<size_t>(N_) * C_;
  T* dx = a.dx.reserve(NC);
  if (last_) {
    auto sp = span("loss", Category::ComputeLoss);
    zeroN(dlnf_.get(), NC);
    const T* dlogits = a.logits.get();  // the forward pass left the gradient there
    linearBackward<T>(*lt_, dlnf_.get(), g(lm_head_), nullptr, dlogits, a.lnf.get(), w(lm_head_), N_, C_, V_,
                      stream_);
    zeroN(dx, NC);
    layerNormBackward(dx, g(lnf_w_), g(lnf_b_), dlnf_.get(), a.out, w(lnf_w_), a.lnf_mean.get(),
                      a.lnf_rstd.get(), N_, C_, stream_);
  } else {
    s_.pp->recv(dx, NC, commType<T>(), s_.coord.stage + 1, comm("recv_grad", Category::CommPpSendrecv));
  }
  for (size_t i = layers_.size(); i-- > 0;) layerBackward(layers_[i], a.layers[i], dx);
  if (first_) {
    auto sp = span("embed", Category::ComputeEmbed);
    embeddingBackward(g(wte_), g(wpe_), dx, a.tokens.get(), B_, T_, C_, stream_);
  } else {
    s_.pp->send(dx, NC, commType<T>(), s_.coord.stage - 1, comm("send_grad", Category::CommPpSendrecv));
  }
}

template <typename T>
void CudaStage<T>::layerBackward(const Layer& L, LayerActs& a, T* dx) {
  const size_t NC = static_cast<size_t>(N_) * C_;
  const size_t NE = static_cast<size_t>(N_) * std::max(E_, 1);
  const bool tp = s_.tp->size() > 1;
  constexpr bool fp32 = std::is_same_v<T, float>;
  // dx holds the gradient of the layer output, which is also that of x2 through the residual.
  T* dm = dm_.get();
  float* dprobs = nullptr;
  if (L.moe) {
    if constexpr (fp32) {
      dprobs = dm_.get() + NC;  // dm and dprobs reduced together: one all-reduce per MoE layer
    } else {
      dprobs = dprobs_.get();
    }
    zeroN(dprobs, NE);
  }
  zeroN(dm, NC);
  if (!L.moe) {
    auto sp = span("ffn", Category::ComputeFfn, L.index);
    const size_t nf = static_cast<size_t>(N_) * Fl_;
    zeroN(dact_.get(), nf);
    linearBackward<T>(*lt_, dact_.get(), g(L.fcp_w), g(L.fcp_b), dx, a.act.get(), w(L.fcp_w), N_, Fl_, C_,
                      stream_);
    zeroN(dpre_.get(), nf);
    geluBackward(dpre_.get(), a.pre.get(), dact_.get(), nf, stream_);
    linearBackward<T>(*lt_, dm, g(L.fc_w), g(L.fc_b), dpre_.get(), a.ln2.get(), w(L.fc_w), N_, C_, Fl_,
                      stream_);
  } else if (dispatch_) {
    moeBackwardDispatch(L, a, dx, dm, dprobs);
  } else {
    moeBackwardLocal(L, a, dx, dm, dprobs);
  }
  if (tp) {
    const CommSpan cs = comm(L.moe ? "moe_allreduce" : "ffn_allreduce", Category::CommTpAllreduce, L.index);
    if (fp32 && L.moe) {
      s_.tp->allReduceSum(dm, NC + NE, DType::F32, cs);
    } else {
      s_.tp->allReduceSum(dm, NC, commType<T>(), cs);
      if (L.moe) s_.tp->allReduceSum(dprobs, NE, DType::F32, cs);
    }
  }
  {
    auto sp = span(L.moe ? "router" : "ffn", L.moe ? Category::ComputeRouter : Category::ComputeFfn, L.index);
    if (L.moe) {
      const double groups = static_cast<double>(c_.parallel.dp * c_.parallel.microbatches);
      const float daux = static_cast<float>(c_.model.aux_loss_coef / groups);
      auxLossBackward(dprobs, a.f.get(), daux, N_, E_, stream_);
      zeroN(drouter_.get(), NE);
      routerSoftmaxBackward(drouter_.get(), dprobs, a.probs.get(), N_, E_, stream_);
      const T* dlogits = nullptr;
      if constexpr (fp32) {
        dlogits = drouter_.get();
      } else {
        convertToBf16(drouter_t_.get(), drouter_.get(), NE, stream_);
        dlogits = drouter_t_.get();
      }
      linearBackward<T>(*lt_, dm, g(L.router), nullptr, dlogits, a.ln2.get(), w(L.router), N_, C_, E_,
                        stream_);
    }
    // dx becomes the gradient of x2: the residual plus LayerNorm 2's input gradient.
    layerNormBackward(dx, g(L.ln2_w), g(L.ln2_b), dm, a.x2.get(), w(L.ln2_w), a.ln2_mean.get(),
                      a.ln2_rstd.get(), N_, C_, stream_);
  }
  {
    auto sp = span("attention", Category::ComputeAttention, L.index);
    const size_t ncl = static_cast<size_t>(N_) * Cl_;
    zeroN(dout_.get(), ncl);
    linearBackward<T>(*lt_, dout_.get(), g(L.proj_w), g(L.proj_b), dx, a.o.get(), w(L.proj_w), N_, Cl_, C_,
                      stream_);
    zeroN(dqkv_.get(), 3 * ncl);
    if constexpr (kFlashCapable) {
      if (flash_) {
        flashAttentionBackward(dqkv_.get(), dout_.get(), a.qkv.get(), a.o.get(), a.lse.get(), att_ws_.get(),
                               B_, T_, NHl_, D_, stream_);
      }
    }
    if (!flash_) {
      attentionCublasBackward(*lt_, dqkv_.get(), dout_.get(), a.qkv.get(), a.att.get(), att_ws_.get(), B_, T_,
                              NHl_, D_, stream_);
    }
    zeroN(dln1_.get(), NC);
    linearBackward<T>(*lt_, dln1_.get(), g(L.attn_w), g(L.attn_b), dqkv_.get(), a.ln1.get(), w(L.attn_w), N_,
                      C_, 3 * Cl_, stream_);
  }
  if (tp)
    s_.tp->allReduceSum(dln1_.get(), NC, commType<T>(),
                        comm("attn_allreduce", Category::CommTpAllreduce, L.index));
  {
    auto sp = span("attention", Category::ComputeAttention, L.index);
    layerNormBackward(dx, g(L.ln1_w), g(L.ln1_b), dln1_.get(), a.x, w(L.ln1_w), a.ln1_mean.get(),
                      a.ln1_rstd.get(), N_, C_, stream_);
  }
}

template <typename T>
void CudaStage<T>::expertsBackward(const Layer& L, LayerActs& a) {
  zeroN(dxg_.get(), static_cast<size_t>(a.rows) * C_);
  for (size_t le = 0; le < L.experts.size(); ++le) {
    const Expert& e = L.experts[le];
    const int r0 = a.row_begin[le];
    const int m = a.row_begin[le + 1] - r0;
    auto sp = span("expert", Category::ComputeExpert, L.index, e.index);
    if (m == 0) continue;
    const size_t rc = static_cast<size_t>(r0) * C_, rf = static_cast<size_t>(r0) * F_;
    const size_t mf = static_cast<size_t>(m) * F_;
    zeroN(dact_.get(), mf);
    linearBackward<T>(*lt_, dact_.get(), g(e.proj_w), g(e.proj_b), dyg_.get() + rc, a.actg.get() + rf,
                      w(e.proj_w), m, F_, C_, stream_);
    zeroN(dpre_.get(), mf);
    geluBackward(dpre_.get(), a.preg.get() + rf, dact_.get(), mf, stream_);
    linearBackward<T>(*lt_, dxg_.get() + rc, g(e.fc_w), g(e.fc_b), dpre_.get(), a.xg.get() + rc, w(e.fc_w), m,
                      C_, F_, stream_);
  }
}

template <typename T>
void CudaStage<T>::moeBackwardLocal(const Layer& L, LayerActs& a, const T* dout, T* dm, float* dprobs) {
  {
    auto sp = span("scatter", Category::MoeSlice, L.index);
    zeroN(dyg_.get(), static_cast<size_t>(a.rows) * C_);
    combineAssignmentsBackward(dyg_.get(), dprobs, dout, a.yg.get(), a.probs.get(), a.choice.get(),
                               a.order.get(), a.j0, a.rows, E_, K_, C_, stream_);
  }
  expertsBackward(L, a);
  {
    auto sp = span("gather", Category::MoeSlice, L.index);
    gatherAssignmentsBackward(dm, dxg_.get(), a.slot_of.get(), a.j0, a.rows, N_, K_, C_, stream_);
  }
}

template <typename T>
void CudaStage<T>::moeBackwardDispatch(const Layer& L, LayerActs& a, const T* dout, T* dm, float* dprobs) {
  {
    auto sp = span("combine", Category::MoePermute, L.index);
    zeroN(dsend_.get(), static_cast<size_t>(a.total) * C_);
    combineAssignmentsBackward(dsend_.get(), dprobs, dout, a.returned.get(), a.probs.get(), a.choice.get(),
                               a.order.get(), 0, a.total, E_, K_, C_, stream_);
  }
  s_.dp->allToAll(dsend_.get(), a.send_elems.data(), drecv_.get(), a.recv_elems.data(), commType<T>(),
                  comm("dispatch_grad", Category::CommEpAlltoall, L.index));
  {
    auto sp = span("expert_layout", Category::MoePermute, L.index);
    permute(a, dyg_.get(), drecv_.get(), true);
  }
  expertsBackward(L, a);
  {
    auto sp = span("return_layout", Category::MoePermute, L.index);
    permute(a, dxg_.get(), drecv_.get(), false);
  }
  s_.dp->allToAll(drecv_.get(), a.recv_elems.data(), dreturned_.get(), a.send_elems.data(), commType<T>(),
                  comm("return_grad", Category::CommEpAlltoall, L.index));
  {
    auto sp = span("dispatch_layout", Category::MoePermute, L.index);
    gatherAssignmentsBackward(dm, dreturned_.get(), a.slot_of.get(), 0, a.total, N_, K_, C_, stream_);
  }
}

// ---------------------------------------------------------------------------------------------------
// Gradient reduction and the update

template <typename T>
StepLosses CudaStage<T>::endStep() {
  microbatch_ = -1;
  phase_ = Phase::Optimizer;
  if (s_.dp->size() > 1 && dp_count_ > 0) {
    s_.dp->allReduceSum(grad_.get(), dp_count_, DType::F32,
                        comm("grad_allreduce", Category::CommDpAllreduce));
  }
  {
    // Squared norm: each parameter counted once over its copies; runs of neighbours counted alike
    // are one launch (the padding between them is zero).
    auto sp = span("grad_norm", Category::Optimizer);
    size_t i = 0;
    while (i < params_.size()) {
      const auto counted = [&](const Param& p) {
        return (p.sp.tp_unique || s_.coord.tp == 0) && (p.sp.dp_unique || s_.coord.dp == 0);
      };
      size_t j = i + 1;
      const bool c = counted(params_[i]);
      while (j < params_.size() && counted(params_[j]) == c &&
             params_[j].offset == params_[j - 1].offset + roundUp(params_[j - 1].n))
        ++j;
      if (c) {
        const size_t begin = params_[i].offset;
        const size_t end = params_[j - 1].offset + params_[j - 1].n;
        accumulateSumOfSquares(sums_.get(), grad_.get() + begin, end - begin, stream_);
      }
      i = j;
    }
  }
  s_.world->allReduceSum(sums_.get(), 3, DType::F64, comm("loss_norm_allreduce", Category::CommDpAllreduce));
  double sums[3] = {0, 0, 0};
  {
    auto sp = span("adamw", Category::Optimizer);
    clipCoefficientDevice(coef_.get(), sums_.get(), c_.train.grad_clip, stream_);
    ++updates_;
    size_t i = 0;
    while (i < params_.size()) {
      size_t j = i + 1;
      const bool decay = params_[i].sp.spec.decay;
      while (j < params_.size() && params_[j].sp.spec.decay == decay &&
             params_[j].offset == params_[j - 1].offset + roundUp(params_[j - 1].n))
        ++j;
      cpu::AdamWParams hp;
      hp.lr = c_.train.lr;
      hp.beta1 = c_.train.beta1;
      hp.beta2 = c_.train.beta2;
      hp.eps = c_.train.eps;
      hp.weightDecay = decay ? c_.train.weight_decay : 0.0;
      const size_t begin = params_[i].offset;
      const size_t n = params_[j - 1].offset + params_[j - 1].n - begin;
      Bf16* copy = nullptr;
      if constexpr (std::is_same_v<T, Bf16>) copy = copy_.get() + begin;
      adamwStep(master_.get() + begin, copy, grad_.get() + begin, m_.get() + begin, v_.get() + begin, n, hp,
                updates_, coef_.get(), stream_);
      i = j;
    }
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(sums, sums_.get(), sizeof sums, cudaMemcpyDeviceToHost, stream_));
    world_->synchronize(stream_);
  }
  StepLosses losses;
  losses.grad_norm = std::sqrt(sums[0]);
  losses.ce = sums[1] / static_cast<double>(c_.tokensPerStep());
  losses.aux = sums[2] / static_cast<double>(c_.parallel.dp * c_.parallel.microbatches);
  losses.loss = losses.ce + c_.model.aux_loss_coef * losses.aux;
  return losses;
}

}  // namespace

MemoryEstimate estimateMemory(const Config& c, const Layout& layout, const RankCoord& coord) {
  const bool bf16 = c.train.precision == "bf16";
  const int64_t esize = bf16 ? 2 : 4;
  MemoryEstimate est;
  for (const auto& sp : stageParameters(c, layout, coord)) {
    int64_t n = 1;
    for (int64_t d : shardShape(sp.spec.shape, sp.shard)) n *= d;
    est.parameters += n;
  }
  est.state_bytes = est.parameters * (16 + (bf16 ? 2 : 0));
  const auto& m = c.model;
  const int64_t tp = c.parallel.tp;
  const int64_t N = c.microbatchSize() * m.seq_len, C = m.d_model, F = m.d_ff, E = m.n_experts, K = m.top_k;
  const int64_t epr = layout.expertsPerRank();
  int64_t rows = E > 0 ? N * std::min(K, epr) : 0;
  if (c.dpmoe() && layout.dp() > 1) rows *= layout.dp();
  // Attention: the fused kernels keep each row's log-sum-exp (fp32) and need an fp32 dQ; the cuBLASLt
  // path keeps the T x T probabilities and needs room for the scores and their gradients.
  const int64_t heads = c.microbatchSize() * (m.n_heads / tp);
  const bool flash =
      bf16 && flashAttentionSupports(static_cast<int>(m.headSize())) && flashAttentionAvailable();
  const int64_t square = heads * m.seq_len * m.seq_len;
  const int64_t attention_kept = flash ? heads * m.seq_len * 2 : square;
  const int64_t attention_scratch =
      flash ? 2 * N * C / tp + 2 * heads * m.seq_len : 7 * N * C / tp + square * 3;
  int64_t per_mb = 0;  // elements of the compute type
  for (int li = layout.firstLayer(coord.stage); li < layout.lastLayer(coord.stage); ++li) {
    per_mb += N * C * 5 + N * 4 * C / tp + attention_kept;
    per_mb += m.isMoeLayer(li) ? N * E * 3 + rows * (2 * C + 2 * F) + N * K * C : 2 * N * F / tp;
  }
  const bool last = coord.stage == layout.pp() - 1;
  if (last) per_mb += N * C + N * m.vocab_size;
  int64_t scratch = N * C * 6 + 2 * std::max(N * F / tp, rows * F) + 2 * rows * C + attention_scratch;
  if (last) scratch += N * C;
  est.activation_bytes = (per_mb * c.parallel.microbatches + scratch) * esize;
  return est;
}

std::unique_ptr<StageExecutor> makeCudaStage(const RankSetup& setup, int device) {
  if (setup.config->train.precision == "fp32") return std::make_unique<CudaStage<float>>(setup, device);
  return std::make_unique<CudaStage<Bf16>>(setup, device);
}

}  // namespace moescope::engine::cuda
