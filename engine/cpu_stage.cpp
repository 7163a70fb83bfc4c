#include "engine/cpu_stage.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

namespace moescope::engine {

namespace {

using namespace cpu;

template <class T>
class CpuOps final : public StageOps {
 public:
  explicit CpuOps(const RankSetup& setup) : StageOps(setup, dtypeOf<T>(), dtypeOf<T>()) {}

  void zero(Tensor t, size_t n) override { std::memset(t, 0, n * dtypeSize(t.type)); }
  void copy(Tensor dst, Tensor src, size_t n) override { std::memcpy(dst, src, n * dtypeSize(src.type)); }
  void upload(Tensor dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, Tensor src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void writeParams(Tensor dst, const float* src, size_t n) override {
    std::copy_n(src, n, static_cast<T*>(dst));
  }
  void readParams(float* dst, Tensor src, size_t n) override { std::copy_n(static_cast<T*>(src), n, dst); }
  void convert(Tensor dst, Tensor src, size_t n) override { copy(dst, src, n); }
  void synchronize() override {}

  void embedding(Tensor out, Tensor tokens, Tensor wte, Tensor wpe) override {
    embeddingForward<T>(out, tokens, wte, wpe, B_, T_, C_);
  }
  void embeddingBackward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) override {
    cpu::embeddingBackward<T>(dwte, dwpe, dout, tokens, B_, T_, C_);
  }
  void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b) override {
    layerNormForward<T>(out, mean, rstd, x, w, b, N_, C_);
  }
  void layerNormBackward(Tensor dx, Tensor dw, Tensor db, Tensor dout, Tensor x, Tensor w, Tensor mean,
                         Tensor rstd) override {
    cpu::layerNormBackward<T>(dx, dw, db, dout, x, w, mean, rstd, N_, C_);
  }
  void linear(Tensor y, Tensor x, Tensor w, Tensor b, int n, int in, int out) override {
    linearForward<T>(y, x, w, b, n, in, out);
  }
  void linearBackward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, int n, int in,
                      int out) override {
    cpu::linearBackward<T>(dx, dw, db, dy, x, w, n, in, out);
  }
  void gelu(Tensor y, Tensor x, size_t n) override { geluForward<T>(y, x, n); }
  void geluBackward(Tensor dx, Tensor x, Tensor dy, size_t n) override { cpu::geluBackward<T>(dx, x, dy, n); }
  void residual(Tensor out, Tensor x, Tensor z, Tensor bias) override {
    const T *xs = x, *zs = z, *b = bias;
    T* o = out;
    for (size_t i = 0; i < static_cast<size_t>(N_) * C_; i += C_)
      for (int c = 0; c < C_; ++c) o[i + c] = xs[i + c] + zs[i + c] + (b ? b[c] : T(0));
  }
  void attention(Tensor out, Buffer& saved, Tensor qkv) override {
    const size_t probs = static_cast<size_t>(B_) * NHl_ * T_ * T_;  // kept for the backward pass
    attentionForward<T>(out, reserve(saved, probs, act), qkv, B_, T_, NHl_, D_);
  }
  void attentionBackward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor, Tensor saved) override {
    zero(dqkv, static_cast<size_t>(N_) * 3 * Cl_);
    cpu::attentionBackward<T>(dqkv, dout, qkv, saved, B_, T_, NHl_, D_);
  }
  void crossEntropy(Tensor logits, Tensor targets, double scale, Tensor sum) override {
    const size_t nv = static_cast<size_t>(N_) * V_;
    logits_.assign(static_cast<T*>(logits), static_cast<T*>(logits) + nv);
    const double total = crossEntropyForward<T>(nullptr, logits_.data(), targets, N_, V_);
    if (sum.data) *static_cast<double*>(sum) += total;
    zero(logits, nv);
    crossEntropyBackward<T>(logits, logits_.data(), targets, static_cast<T>(scale), N_, V_);
  }

  void router(Tensor probs, Tensor choice, Tensor keep, Tensor logits, int capacity) override {
    softmaxForward<T>(probs, logits, N_, E_);
    routerTopK<T>(choice, probs, N_, E_, K_);
    routerCapacity(keep, nullptr, choice, N_, E_, K_, capacity);
  }
  void auxLoss(Tensor f, Tensor sum, Tensor probs, Tensor choice) override {
    const T aux = auxLossForward<T>(f, probs, choice, N_, E_, K_);
    if (sum.data) *static_cast<double*>(sum) += static_cast<double>(aux);
  }
  void expertOrder(Tensor order, Tensor offsets, Tensor slot_of, Tensor choice, Tensor keep) override {
    int32_t* off = offsets;
    const int a = dispatchOrder(order, off + 1, choice, keep, N_, E_, K_);
    off[0] = 0;
    for (int e = 0; e < E_; ++e) off[e + 1] += off[e];
    dispatchSlots(slot_of, order, a, N_ * K_);
  }
  void routerBackward(Tensor dlogits, Tensor dprobs, Tensor probs, Tensor f, double daux) override {
    auxLossBackward<T>(dprobs, f, static_cast<T>(daux), N_, E_);
    zero(dlogits, static_cast<size_t>(N_) * E_);
    softmaxBackward<T>(dlogits, dprobs, probs, N_, E_);
  }
  void gatherSlots(Tensor out, Tensor x, const Slots& s) override {
    byExpert(
        s, [&](int, const int32_t* rows, int m, size_t r) { gatherRows<T>(out.at(r * C_), x, rows, m, C_); });
  }
  void gatherSlotsBackward(Tensor dx, Tensor dout, const Slots& s, bool) override {
    byExpert(s, [&](int, const int32_t* rows, int m, size_t r) {
      gatherRowsBackward<T>(dx, dout.at(r * C_), rows, m, C_);
    });
  }
  void scatterSlots(Tensor y, Tensor src, const Slots& s, bool) override {
    byExpert(s, [&](int e, const int32_t* rows, int m, size_t r) {
      scatterAddWeighted<T>(y, src.at(r * C_), s.probs, rows, m, C_, E_, e);
    });
  }
  void scatterSlotsBackward(Tensor dsrc, Tensor dprobs, Tensor dy, Tensor src, const Slots& s) override {
    byExpert(s, [&](int e, const int32_t* rows, int m, size_t r) {
      scatterAddWeightedBackward<T>(dsrc.at(r * C_), dprobs, dy, src.at(r * C_), s.probs, rows, m, C_, E_, e);
    });
  }

  void sumOfSquares(Tensor sum, Tensor x, size_t n) override {
    *static_cast<double*>(sum) += cpu::sumOfSquares<T>(x, n);
  }
  void clip(Tensor sums, double maxNorm) override {
    coef_ = clipCoefficient(std::sqrt(*static_cast<double*>(sums)), maxNorm);
  }
  void adamw(const std::vector<ParamRun>& runs, const AdamWParams& hp, int step) override {
    for (const ParamRun& r : runs) {
      AdamWParams h = hp;
      h.weightDecay = r.decay ? hp.weightDecay : 0.0;
      adamwStep<T>(r.param, r.grad, r.m, r.v, r.n, h, step, coef_);
    }
  }

 protected:
  std::shared_ptr<void> allocate(size_t bytes) override {
    void* p = ::operator new (bytes, std::align_val_t{64});
    std::memset(p, 0, bytes);
    return {p, [](void* q) { ::operator delete (q, std::align_val_t{64}); }};
  }

 private:
  // fn(expert, tokens, count, first) for each expert's run of the slots (they are ordered by expert):
  // the CPU reference's per-expert index slicing.
  template <class Fn>
  void byExpert(const Slots& s, Fn fn) {
    const int32_t *order = s.order.at(static_cast<size_t>(s.j0)), *choice = s.choice;
    rows_.resize(static_cast<size_t>(s.m));
    for (int r = 0; r < s.m; ++r) rows_[static_cast<size_t>(r)] = order[r] / K_;
    for (int r = 0, q = 0; r < s.m; r = q) {
      q = r + 1;
      while (q < s.m && choice[order[q]] == choice[order[r]]) ++q;
      fn(choice[order[r]], rows_.data() + r, q - r, static_cast<size_t>(r));
    }
  }

  std::vector<T> logits_;  // crossEntropy's copy of the logits it turns into their gradient
  std::vector<int32_t> rows_;
  double coef_ = 1;  // the step's clipping coefficient
};

}  // namespace

template <class T>
std::unique_ptr<StagePass> makeCpuStage(const RankSetup& setup) {
  return std::make_unique<StagePass>(setup, std::make_unique<CpuOps<T>>(setup));
}

template std::unique_ptr<StagePass> makeCpuStage<float>(const RankSetup&);
template std::unique_ptr<StagePass> makeCpuStage<double>(const RankSetup&);

}  // namespace moescope::engine
