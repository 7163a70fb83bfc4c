#include "engine/cpu_stage.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

namespace moescope::engine {

namespace {

template <class T>
class CpuOps final : public StageOps {
 public:
  using StageOps::StageOps;
  DType act() const override { return dtypeOf<T>(); }
  DType acc() const override { return dtypeOf<T>(); }

  void zero(Tensor t, size_t n) override { std::memset(t.data, 0, n * dtypeSize(t.type)); }
  void copy(Tensor dst, Tensor src, size_t n) override {
    std::memcpy(dst.data, src.data, n * dtypeSize(src.type));
  }
  void upload(Tensor dst, const void* src, size_t bytes) override { std::memcpy(dst.data, src, bytes); }
  void download(void* dst, Tensor src, size_t bytes) override { std::memcpy(dst, src.data, bytes); }
  void writeParams(Tensor dst, const float* src, size_t n) override { std::copy_n(src, n, P(dst)); }
  void readParams(float* dst, Tensor src, size_t n) override {
    std::transform(P(src), P(src) + n, dst, [](T v) { return static_cast<float>(v); });
  }
  void convert(Tensor dst, Tensor src, size_t n) override { copy(dst, src, n); }
  void synchronize() override {}

  void embedding(Tensor out, Tensor tokens, Tensor wte, Tensor wpe) override {
    cpu::embeddingForward(P(out), I(tokens), P(wte), P(wpe), B_, T_, C_);
  }
  void embeddingBackward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) override {
    cpu::embeddingBackward(P(dwte), P(dwpe), P(dout), I(tokens), B_, T_, C_);
  }
  void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b, int n, int C) override {
    cpu::layerNormForward(P(out), P(mean), P(rstd), P(x), P(w), P(b), n, C);
  }
  void layerNormBackward(Tensor dx, Tensor dw, Tensor db, Tensor dout, Tensor x, Tensor w, Tensor mean,
                         Tensor rstd, int n, int C) override {
    cpu::layerNormBackward(P(dx), P(dw), P(db), P(dout), P(x), P(w), P(mean), P(rstd), n, C);
  }
  void linear(Tensor y, Tensor x, Tensor w, Tensor b, int n, int in, int out) override {
    cpu::linearForward(P(y), P(x), P(w), P(b), n, in, out);
  }
  void linearBackward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, int n, int in,
                      int out) override {
    cpu::linearBackward(P(dx), P(dw), P(db), P(dy), P(x), P(w), n, in, out);
  }
  void gelu(Tensor y, Tensor x, size_t n) override { cpu::geluForward(P(y), P(x), n); }
  void geluBackward(Tensor dx, Tensor x, Tensor dy, size_t n) override {
    cpu::geluBackward(P(dx), P(x), P(dy), n);
  }
  void residual(Tensor out, Tensor x, Tensor z, Tensor bias, int n, int C) override {
    const T *xs = P(x), *zs = P(z), *b = P(bias);
    T* o = P(out);
    for (size_t r = 0; r < static_cast<size_t>(n) * C; r += C)
      for (size_t c = 0; c < static_cast<size_t>(C); ++c)
        o[r + c] = xs[r + c] + zs[r + c] + (b ? b[c] : T(0));
  }
  void attention(Tensor out, Buffer& saved, Tensor qkv) override {
    const size_t probs = static_cast<size_t>(B_) * NHl_ * T_ * T_;  // kept for the backward pass
    cpu::attentionForward(P(out), P(reserve(saved, probs, act())), P(qkv), B_, T_, NHl_, D_);
  }
  void attentionBackward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor, Tensor saved) override {
    cpu::attentionBackward(P(dqkv), P(dout), P(qkv), P(saved), B_, T_, NHl_, D_);
  }
  void crossEntropy(Tensor logits, Tensor targets, double scale, Tensor sum) override {
    const size_t nv = static_cast<size_t>(N_) * V_;
    logits_.assign(P(logits), P(logits) + nv);
    const double total =
        cpu::crossEntropyForward(static_cast<T*>(nullptr), logits_.data(), I(targets), N_, V_);
    if (sum.data) *sum.as<double>() += total;
    zero(logits, nv);
    cpu::crossEntropyBackward(P(logits), logits_.data(), I(targets), static_cast<T>(scale), N_, V_);
  }

  void router(Tensor probs, Tensor choice, Tensor keep, Tensor logits, int capacity) override {
    cpu::softmaxForward(P(probs), P(logits), N_, E_);
    cpu::routerTopK(I(choice), P(probs), N_, E_, K_);
    cpu::routerCapacity(keep.as<uint8_t>(), nullptr, I(choice), N_, E_, K_, capacity);
  }
  void auxLoss(Tensor f, Tensor sum, Tensor probs, Tensor choice) override {
    const T aux = cpu::auxLossForward(P(f), P(probs), I(choice), N_, E_, K_);
    if (sum.data) *sum.as<double>() += static_cast<double>(aux);
  }
  void expertOrder(Tensor order, Tensor offsets, Tensor slot_of, Tensor choice, Tensor keep) override {
    int32_t* off = I(offsets);
    const int a = cpu::dispatchOrder(I(order), off + 1, I(choice), keep.as<uint8_t>(), N_, E_, K_);
    off[0] = 0;
    for (int e = 0; e < E_; ++e) off[e + 1] += off[e];
    cpu::dispatchSlots(I(slot_of), I(order), a, N_ * K_);
  }
  void routerBackward(Tensor dlogits, Tensor dprobs, Tensor probs, Tensor f, double daux) override {
    cpu::auxLossBackward(P(dprobs), P(f), static_cast<T>(daux), N_, E_);
    zero(dlogits, static_cast<size_t>(N_) * E_);
    cpu::softmaxBackward(P(dlogits), P(dprobs), P(probs), N_, E_);
  }
  void gatherSlots(Tensor out, Tensor x, const Slots& s) override {
    byExpert(s, [&](int, const int32_t* rows, int m, size_t r) {
      cpu::gatherRows(P(out) + r * C_, P(x), rows, m, C_);
    });
  }
  void gatherSlotsBackward(Tensor dx, Tensor dout, const Slots& s, bool) override {
    byExpert(s, [&](int, const int32_t* rows, int m, size_t r) {
      cpu::gatherRowsBackward(P(dx), P(dout) + r * C_, rows, m, C_);
    });
  }
  void scatterSlots(Tensor y, Tensor src, const Slots& s, bool) override {
    byExpert(s, [&](int e, const int32_t* rows, int m, size_t r) {
      cpu::scatterAddWeighted(P(y), P(src) + r * C_, P(s.probs), rows, m, C_, E_, e);
    });
  }
  void scatterSlotsBackward(Tensor dsrc, Tensor dprobs, Tensor dy, Tensor src, const Slots& s) override {
    byExpert(s, [&](int e, const int32_t* rows, int m, size_t r) {
      cpu::scatterAddWeightedBackward(P(dsrc) + r * C_, P(dprobs), P(dy), P(src) + r * C_, P(s.probs), rows,
                                      m, C_, E_, e);
    });
  }

  void sumOfSquares(Tensor sum, Tensor x, size_t n) override {
    *sum.as<double>() += cpu::sumOfSquares(P(x), n);
  }
  void clip(Tensor sums, double maxNorm) override {
    coef_ = cpu::clipCoefficient(std::sqrt(sums.as<double>()[0]), maxNorm);
  }
  void adamw(Tensor param, Tensor, Tensor grad, Tensor m, Tensor v, size_t n, const cpu::AdamWParams& hp,
             int step) override {
    cpu::adamwStep(P(param), P(grad), P(m), P(v), n, hp, step, coef_);
  }

 protected:
  std::shared_ptr<void> allocate(size_t bytes) override {
    void* p = ::operator new (bytes, std::align_val_t{64});
    std::memset(p, 0, bytes);
    return {p, [](void* q) { ::operator delete (q, std::align_val_t{64}); }};
  }

 private:
  static T* P(Tensor t) { return t.as<T>(); }
  static int32_t* I(Tensor t) { return t.as<int32_t>(); }
  // fn(expert, tokens, count, first) for each expert's run of the slots (they are ordered by expert):
  // the CPU reference's per-expert index slicing.
  template <class Fn>
  void byExpert(const Slots& s, Fn fn) {
    const int32_t *order = I(s.order) + s.j0, *choice = I(s.choice);
    rows_.resize(static_cast<size_t>(s.m));
    for (int r = 0; r < s.m; ++r) rows_[static_cast<size_t>(r)] = order[r] / K_;
    for (int r = 0; r < s.m;) {
      int q = r + 1;
      while (q < s.m && choice[order[q]] == choice[order[r]]) ++q;
      fn(choice[order[r]], rows_.data() + r, q - r, static_cast<size_t>(r));
      r = q;
    }
  }

  std::vector<T> logits_;
  std::vector<int32_t> rows_;
  double coef_ = 1;
};

}  // namespace

template <class T>
std::unique_ptr<StagePass> makeCpuStage(const RankSetup& setup) {
  return std::make_unique<StagePass>(setup, std::make_unique<CpuOps<T>>(setup));
}

template std::unique_ptr<StagePass> makeCpuStage<float>(const RankSetup&);
template std::unique_ptr<StagePass> makeCpuStage<double>(const RankSetup&);

}  // namespace moescope::engine
