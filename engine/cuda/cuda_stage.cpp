#include "engine/cuda/cuda_stage.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <exception>
#include <stdexcept>
#include <type_traits>

#include "engine/cuda/adamw.h"
#include "engine/cuda/adamw_multi.h"
#include "engine/cuda/attention_cublas.h"
#include "engine/cuda/aux_loss.h"
#include "engine/cuda/cross_entropy.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cudnn_attention.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/elementwise.h"
#include "engine/cuda/embedding.h"
#include "engine/cuda/flash_attention.h"
#include "engine/cuda/gelu.h"
#include "engine/cuda/global_norm.h"
#include "engine/cuda/grouped_linear.h"
#include "engine/cuda/kernel_choice.h"
#include "engine/cuda/layernorm.h"
#include "engine/cuda/layernorm_residual.h"
#include "engine/cuda/linear.h"
#include "engine/cuda/linear_gelu.h"
#include "engine/cuda/moe_slicing.h"
#include "engine/cuda/nccl_communicator.h"
#include "engine/cuda/residual.h"
#include "engine/cuda/router.h"
#include "engine/cuda/sum.h"
#include "engine/stage_pass.h"

namespace moescope::engine::cuda {

namespace {

using Bf16 = __nv_bfloat16;

// Every call enqueues on the stage's stream; the NCCL communicators use it too, so that communication
// is ordered with the computation without a host wait. The fused paths run as the options say
// (kernel_choice.h); StageOps' defaults are the separate kernels they replace.
template <typename T>
class CudaOps final : public StageOps {
 public:
  static constexpr bool kBf16 = std::is_same_v<T, Bf16>;

  CudaOps(const RankSetup& setup, int device, const CudaKernelOptions& options)
      : StageOps(setup, kBf16 ? DType::BF16 : DType::F32, DType::F32), device_(device) {
    MOESCOPE_CUDA_CHECK(cudaSetDevice(device_));
    k_ = effectiveKernelOptions(*setup.config, options);
    recompute_gelu_ = !k_.keep_gelu_output;
    MOESCOPE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    for (Communicator* c : {setup.world, setup.tp, setup.dp, setup.pp}) {
      auto* n = dynamic_cast<NcclCommunicator*>(c);
      if (!n) throw std::logic_error("CudaStage: the communicators must be NCCL communicators");
      n->setStream(stream_);
      comms_.push_back(n);
    }
    world_ = comms_[0]->world();
    lt_ = std::make_unique<CublasLt>();
    lt_->setBiasGradientEpilogue(k_.bias_epilogue);
    if (k_.grouped_experts && E_ > 0) grouped_ = std::make_unique<GroupedLinear>(*lt_);
    reserve(att_ws_, attentionWorkspace(), DType::U8);
    reserve(coef_, 1, DType::F32);
    if (last_) reserve(losses_, static_cast<size_t>(N_), DType::F32);
    if (E_ > 0) {
      reserve(prob_mean_, static_cast<size_t>(E_), DType::F32);
      reserve(aux_, 1, DType::F32);
      if (kBf16) reserve(drouter_, static_cast<size_t>(N_) * E_, DType::F32);
    }
  }
  ~CudaOps() override {
    // A failing or cancelled run may leave NCCL kernels waiting on a peer: end them before the stage's
    // memory is freed (cudaFree waits for the device).
    if (std::uncaught_exceptions() > 0 || world_->aborted()) {
      world_->abort("a rank failed");
      for (NcclCommunicator* c : comms_) c->abortNow();
    } else {
      cudaStreamSynchronize(stream_);
    }
    cudaStreamDestroy(stream_);
  }

  void zero(Tensor t, size_t n) override {
    if (n > 0) MOESCOPE_CUDA_CHECK(cudaMemsetAsync(t, 0, n * dtypeSize(t.type), stream_));
  }
  void copy(Tensor dst, Tensor src, size_t n) override {
    MOESCOPE_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, n * dtypeSize(src.type), cudaMemcpyDeviceToDevice, stream_));
  }
  void upload(Tensor dst, const void* src, size_t bytes) override {
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  }
  void download(void* dst, Tensor src, size_t bytes) override {
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    world_->synchronize(stream_);
  }
  void writeParams(Tensor dst, const float* src, size_t n) override {
    MOESCOPE_CUDA_CHECK(cudaMemcpy(static_cast<float*>(dst), src, n * sizeof(float), cudaMemcpyHostToDevice));
  }
  void readParams(float* dst, Tensor src, size_t n) override {
    MOESCOPE_CUDA_CHECK(cudaMemcpy(dst, static_cast<float*>(src), n * sizeof(float), cudaMemcpyDeviceToHost));
  }
  void convert(Tensor dst, Tensor src, size_t n) override { convertToBf16(dst, src, n, stream_); }
  void synchronize() override { MOESCOPE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  void bindThread() override { MOESCOPE_CUDA_CHECK(cudaSetDevice(device_)); }
  // With the GPU tracer on, a span is the launch and CUPTI gives the GPU extent; without it the span
  // waits for its work, so host time stands for GPU time.
  void settle() override {
    if (!tracer::spanHooks()) cudaStreamSynchronize(stream_);
  }

  void embedding(Tensor out, Tensor tokens, Tensor wte, Tensor wpe) override {
    embeddingForward<T>(out, tokens, wte, wpe, B_, T_, C_, stream_);
  }
  void embeddingBackward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) override {
    cuda::embeddingBackward<T>(dwte, dwpe, dout, tokens, B_, T_, C_, stream_);
  }
  void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b) override {
    layerNormForward<T>(out, mean, rstd, x, w, b, N_, C_, stream_);
  }
  void layerNormBackward(Tensor dx, Tensor dw, Tensor db, Tensor dout, Tensor x, Tensor w, Tensor mean,
                         Tensor rstd) override {
    cuda::layerNormBackward<T>(dx, dw, db, dout, x, w, mean, rstd, N_, C_, stream_);
  }
  void linear(Tensor y, Tensor x, Tensor w, Tensor b, int n, int in, int out) override {
    linearForward<T>(*lt_, y, x, w, b, n, in, out, stream_);
  }
  void linearBackward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, int n, int in,
                      int out) override {
    cuda::linearBackward<T>(*lt_, dx, dw, db, dy, x, w, n, in, out, stream_);
  }
  void gelu(Tensor y, Tensor x, size_t n) override { geluForward<T>(y, x, n, stream_); }
  void geluBackward(Tensor dx, Tensor x, Tensor dy, size_t n) override {
    cuda::geluBackward<T>(dx, x, dy, n, stream_);
  }
  void residual(Tensor out, Tensor x, Tensor z, Tensor bias) override {
    residualAdd<T>(out, x, z, bias, N_, C_, stream_);
  }
  void residualLayerNorm(Tensor r, Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor z, Tensor bias,
                         Tensor w, Tensor b) override {
    if (!k_.residual_norm) return StageOps::residualLayerNorm(r, out, mean, rstd, x, z, bias, w, b);
    residualLayerNormForward<T>(r, out, mean, rstd, x, z, bias, w, b, N_, C_, stream_);
  }
  // bf16 with the GELU epilogues: the first product writes the activation and keeps the pre-activation;
  // with the DGELU epilogue too, the backward pass has the second product's input gradient apply GELU'
  // and sum the first bias's gradient (no memsets, no GELU kernels).
  void ffn(Tensor y, Tensor pre, Tensor act, Tensor x, const Ffn& w, int n, int hidden) override {
    if (!k_.gelu_epilogue) return StageOps::ffn(y, pre, act, x, w, n, hidden);
    linearGeluForward<T>(*lt_, act, pre, x, w.fc_w, w.fc_b, n, C_, hidden, stream_);
    linearForward<T>(*lt_, y, act, w.proj_w, w.proj_b, n, hidden, C_, stream_);
  }
  // The activation gradient is written over dpre by the second product (beta 0: no memset, no buffer of
  // its own), then GELU' applied in place, by a kernel or in that product's epilogue. The separate default
  // of StageOps zeroed two N x hidden buffers a layer and had GELU' add into one (16 memsets of 268 MB,
  // 0.95 ms of the bench model's step, and one read of 268 MB a layer more); the values are the same.
  void ffnBackward(Tensor dx, const Ffn& g, Tensor dpre, Tensor dy, Tensor x, Tensor pre, Tensor act,
                   const Ffn& w, int n, int hidden) override {
    const bool dgelu = k_.dgelu_epilogue != DgeluEpilogue::Off;
    const bool fcBiasInEpilogue = k_.dgelu_epilogue == DgeluEpilogue::WithBias;
    if (dgelu) {
      cuda::linearBackward<T>(*lt_, nullptr, g.proj_w, g.proj_b, dy, act, w.proj_w, n, hidden, C_, stream_);
      linearBackwardDgelu<T>(*lt_, dpre, fcBiasInEpilogue ? g.fc_b : Tensor{}, dy, w.proj_w, pre, n, hidden,
                             C_, stream_);
    } else {
      cuda::linearBackward<T>(*lt_, dpre, g.proj_w, g.proj_b, dy, act, w.proj_w, n, hidden, C_, stream_,
                              /*overwriteDx=*/true);
      geluBackwardInPlace<T>(dpre, pre, static_cast<size_t>(n) * hidden, stream_);
    }
    cuda::linearBackward<T>(*lt_, dx, g.fc_w, fcBiasInEpilogue ? Tensor{} : g.fc_b, dpre, x, w.fc_w, n, C_,
                            hidden, stream_);
  }
  // Grouped: each product one grouped GEMM over every expert, the biases and GELU one launch each.
  void experts(Tensor y, Tensor pre, Tensor act, Tensor x, const std::vector<Ffn>& w,
               const std::vector<int>& rows) override {
    if (!grouped_) return StageOps::experts(y, pre, act, x, w, rows);
    grouped_->forward<T>(act, x, all<const T*>(w, &Ffn::fc_w), all<const T*>(w, &Ffn::fc_b), rows, C_, F_,
                         stream_, pre);
    grouped_->forward<T>(y, act, all<const T*>(w, &Ffn::proj_w), all<const T*>(w, &Ffn::proj_b), rows, F_, C_,
                         stream_);
  }
  void expertsBackward(Tensor dx, const std::vector<Ffn>& g, Tensor dpre, Tensor dy, Tensor x, Tensor pre,
                       Tensor act, const std::vector<Ffn>& w, const std::vector<int>& rows) override {
    if (!grouped_) return StageOps::expertsBackward(dx, g, dpre, dy, x, pre, act, w, rows);
    const size_t nf = static_cast<size_t>(rows.back()) * F_;
    // A split backward's B pass asks no weight gradients (their tensors empty): none are computed.
    const bool weights = !g.empty() && g.front().fc_w.data;
    auto grads = [&](Tensor Ffn::*field) { return weights ? all<float*>(g, field) : std::vector<float*>{}; };
    zero(dpre, nf);
    grouped_->backward<T>(dpre, grads(&Ffn::proj_w), grads(&Ffn::proj_b), dy, act,
                          all<const T*>(w, &Ffn::proj_w), rows, F_, C_, stream_);
    geluBackwardInPlace<T>(dpre, pre, nf, stream_);
    grouped_->backward<T>(dx, grads(&Ffn::fc_w), grads(&Ffn::fc_b), dpre, x, all<const T*>(w, &Ffn::fc_w),
                          rows, C_, F_, stream_);
  }
  // cuDNN and the fused kernels keep each row's log-sum-exp; cuBLASLt keeps the T x T probabilities.
  void attention(Tensor out, Buffer& saved, Tensor qkv) override {
    const size_t rows = static_cast<size_t>(B_) * NHl_ * T_;
    if constexpr (kBf16) {
      if (k_.attention == AttentionKernel::Cudnn)
        return cudnn_->forward(out, reserve(saved, rows, DType::F32), qkv, att_ws_, B_, T_, NHl_, D_,
                               stream_);
      if (k_.attention == AttentionKernel::Flash)
        return flashAttentionForward(out, reserve(saved, rows, DType::F32), qkv, B_, T_, NHl_, D_, stream_);
    }
    attentionCublasForward<T>(*lt_, out, reserve(saved, rows * T_, act), qkv, att_ws_, B_, T_, NHl_, D_,
                              stream_);
  }
  // cuDNN overwrites dqkv; the others add into it.
  void attentionBackward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor saved) override {
    if constexpr (kBf16) {
      if (k_.attention == AttentionKernel::Cudnn)
        return cudnn_->backward(dqkv, dout, qkv, out, saved, att_ws_, B_, T_, NHl_, D_, stream_);
    }
    zero(dqkv, static_cast<size_t>(N_) * 3 * Cl_);
    if constexpr (kBf16) {
      if (k_.attention == AttentionKernel::Flash)
        return flashAttentionBackward(dqkv, dout, qkv, out, saved, att_ws_, B_, T_, NHl_, D_, stream_);
    }
    attentionCublasBackward<T>(*lt_, dqkv, dout, qkv, saved, att_ws_, B_, T_, NHl_, D_, stream_);
  }
  void crossEntropy(Tensor logits, Tensor targets, double scale, Tensor sum) override {
    crossEntropyForwardBackward<T>(losses_, logits, targets, static_cast<float>(scale), N_, V_, stream_);
    if (sum.data) accumulateSum(sum, losses_, static_cast<size_t>(N_), stream_);
  }

  void router(Tensor probs, Tensor choice, Tensor keep, Tensor logits, int capacity) override {
    routerSoftmaxTopK<T>(probs, choice, logits, N_, E_, K_, stream_);
    routerCapacity(keep, nullptr, nullptr, choice, N_, E_, K_, capacity, stream_);
  }
  void auxLoss(Tensor f, Tensor sum, Tensor probs, Tensor choice) override {
    auxLossForward(f, prob_mean_, aux_, probs, choice, N_, E_, K_, stream_);
    if (sum.data) accumulateSum(sum, aux_, 1, stream_);
  }
  void expertOrder(Tensor order, Tensor offsets, Tensor slot_of, Tensor choice, Tensor keep) override {
    buildExpertOrder(order, offsets, slot_of, choice, keep, N_, E_, K_, stream_);
  }
  void routerBackward(Tensor dlogits, Tensor dprobs, Tensor probs, Tensor f, double daux) override {
    auxLossBackward(dprobs, f, static_cast<float>(daux), N_, E_, stream_);
    const size_t ne = static_cast<size_t>(N_) * E_;
    // fp32: the softmax gradient in place; bf16: in fp32 first, then rounded once.
    const Tensor d = kBf16 ? drouter_ : dlogits;
    zero(d, ne);
    routerSoftmaxBackward(d, dprobs, probs, N_, E_, stream_);
    if constexpr (kBf16) convertToBf16(dlogits, d, ne, stream_);
  }
  void gatherSlots(Tensor out, Tensor x, const Slots& s) override {
    gatherAssignments<T>(out, x, s.order, s.j0, s.m, K_, C_, stream_);
  }
  void gatherSlotsBackward(Tensor dx, Tensor dout, const Slots& s, bool oneExpert) override {
    if (oneExpert) return gatherExpertRowsBackward<T>(dx, dout, s.order, s.j0, s.m, K_, C_, stream_);
    gatherAssignmentsBackward<T>(dx, dout, s.slot_of, s.j0, s.m, N_, K_, C_, stream_);
  }
  void scatterSlots(Tensor y, Tensor src, const Slots& s, bool oneExpert) override {
    if (oneExpert)
      return scatterExpertRows<T>(y, src, s.probs, s.choice, s.order, s.j0, s.m, E_, K_, C_, stream_);
    combineAssignments<T>(y, src, s.probs, s.choice, s.slot_of, s.j0, s.m, N_, E_, K_, C_, stream_);
  }
  void scatterSlotsBackward(Tensor dsrc, Tensor dprobs, Tensor dy, Tensor src, const Slots& s) override {
    combineAssignmentsBackward<T>(dsrc, dprobs, dy, src, s.probs, s.choice, s.order, s.j0, s.m, E_, K_, C_,
                                  stream_);
  }

  void sumOfSquares(Tensor sum, Tensor x, size_t n) override { accumulateSumOfSquares(sum, x, n, stream_); }
  void clip(Tensor sums, double maxNorm) override { clipCoefficientDevice(coef_, sums, maxNorm, stream_); }
  void adamw(const std::vector<ParamRun>& runs, const cpu::AdamWParams& hp, int step) override {
    if (k_.adamw_one_launch) {
      if (!adamw_ || adamw_->tensors() != runs.size()) {
        std::vector<AdamWTensor> table;
        for (const ParamRun& r : runs) table.push_back({r.param, r.copy, r.grad, r.m, r.v, r.n, r.decay});
        adamw_ = std::make_unique<AdamWMultiTensor>(table);
      }
      return adamw_->step(hp, step, coef_, stream_);
    }
    for (const ParamRun& r : runs) {
      cpu::AdamWParams h = hp;
      h.weightDecay = r.decay ? hp.weightDecay : 0.0;
      adamwStep(r.param, r.copy, r.grad, r.m, r.v, r.n, h, step, coef_, stream_);
    }
  }

 protected:
  // Counted (device_memory.h), so a run's peak device memory includes the stage's.
  std::shared_ptr<void> allocate(size_t bytes) override { return {deviceAlloc(bytes), deviceFree}; }

 private:
  template <class P>
  static std::vector<P> all(const std::vector<Ffn>& f, Tensor Ffn::*field) {
    std::vector<P> out;
    for (const Ffn& e : f) out.push_back(e.*field);
    return out;
  }
  size_t attentionWorkspace() {
    if (k_.attention == AttentionKernel::Flash) return flashAttentionWorkspaceBytes(B_, T_, NHl_, D_);
    if (k_.attention == AttentionKernel::Cublas)
      return attentionCublasWorkspaceBytes(B_, T_, NHl_, D_, sizeof(T));
    try {  // cuDNN builds both plans here: a failure shows before the first step
      cudnn_ = std::make_unique<CudnnAttention>();
      return cudnn_->workspaceBytes(B_, T_, NHl_, D_);
    } catch (const CudaError& e) {
      throw CudaError(std::string(e.what()) +
                      " (MOESCOPE_CUDA_ATTENTION=flash takes the engine's own kernels)");
    }
  }

  int device_ = 0;
  CudaKernelOptions k_;  // as this run takes them
  cudaStream_t stream_ = nullptr;
  std::vector<NcclCommunicator*> comms_;
  NcclWorld* world_ = nullptr;
  std::unique_ptr<CublasLt> lt_;
  std::unique_ptr<GroupedLinear> grouped_;
  std::unique_ptr<CudnnAttention> cudnn_;
  std::unique_ptr<AdamWMultiTensor> adamw_;
  Buffer att_ws_, coef_, losses_, prob_mean_, aux_, drouter_;  // workspaces and one-step scratch
};

}  // namespace

std::unique_ptr<StageExecutor> makeCudaStage(const RankSetup& setup, int device,
                                             const CudaKernelOptions& options) {
  if (setup.config->train.precision == Precision::Fp32) {
    return std::make_unique<StagePass>(setup, std::make_unique<CudaOps<float>>(setup, device, options));
  }
  return std::make_unique<StagePass>(setup, std::make_unique<CudaOps<Bf16>>(setup, device, options));
}

}  // namespace moescope::engine::cuda
