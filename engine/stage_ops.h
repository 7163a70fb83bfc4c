// What a backend gives the stage pass (engine/stage_pass.h): memory of its kind (host arrays for the
// CPU, device arrays on one stream for CUDA) and the model's kernels over it, each as engine/cpu/ops.h
// defines it (outputs overwritten, gradients accumulated; optional arguments may be empty). The pass
// decides what runs in which order, in which span, and what is communicated; a backend only computes,
// in its element types (act: activations and the weights' compute copy; acc: master weights,
// gradients, Adam state, router probabilities, LayerNorm statistics), and keeps what it alone needs
// (cuBLASLt, workspaces). Shapes not given are the stage's (StageShape): LayerNorm and residuals over
// [N, C], embedding [B, T, C], attention over this rank's heads, the loss over [N, V], MoE over N tokens.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "engine/communicator.h"
#include "engine/cpu/ops.h"
#include "engine/stage_shape.h"

namespace moescope::engine {

// Whether U elements are of type t (void: of any; a 2-byte U: bf16, the CUDA backend's).
template <class U>
constexpr bool holds(DType t) {
  if constexpr (std::is_void_v<U>)
    return true;
  else if constexpr (sizeof(U) == 2)
    return t == DType::BF16;
  else
    return t == dtypeOf<U>();
}

// A backend's array (not owned): where it starts, and its element type. It converts to a pointer of
// its element type, as the kernels take it, and refuses to convert to any other: an array handed to
// the wrong argument throws at once instead of being read as another type.
struct Tensor {
  void* data = nullptr;
  DType type = DType::F32;
  Tensor at(size_t elements) const { return {static_cast<char*>(data) + elements * dtypeSize(type), type}; }
  template <class U>
  operator U*() const {
    if (data && !holds<std::remove_const_t<U>>(type))
      throw std::logic_error("stage: an array of another type");
    return static_cast<U*>(data);
  }
};

// A backend's array that only grows (StageOps::reserve), freed with its last copy.
struct Buffer : Tensor {
  size_t bytes = 0;
  std::shared_ptr<void> memory;
};

// The slots [j0, j0+m) of a routing group's kept assignments ordered by expert (expertOrder), with the
// router's picks and probabilities they refer to.
struct Slots {
  Tensor order, slot_of, choice, probs;
  int j0 = 0, m = 0;
};

class StageOps : protected StageShape {
 public:
  StageOps(const RankSetup& setup, DType act, DType acc) : StageShape(setup), act(act), acc(acc) {}
  virtual ~StageOps() = default;
  const DType act, acc;
  // Whether the pass keeps the dense FFN's GELU output for the backward or recomputes it there from the
  // pre-activation (into one buffer all layers share): a backend's memory choice, the same values.
  bool recomputesGelu() const { return recompute_gelu_; }

  // At least n elements of the type (the contents are lost when it grows).
  Tensor reserve(Buffer& b, size_t n, DType type) {
    const size_t bytes = std::max<size_t>(n * dtypeSize(type), 1);
    if (bytes > b.bytes) {
      b.memory.reset();
      b.memory = allocate(bytes);
      b.bytes = bytes;
    }
    b.data = b.memory.get();
    b.type = type;
    return b;
  }
  virtual void zero(Tensor t, size_t n) = 0;
  virtual void copy(Tensor dst, Tensor src, size_t n) = 0;
  // Host bytes to and from the backend, in stream order; download waits for them.
  virtual void upload(Tensor dst, const void* src, size_t bytes) = 0;
  virtual void download(void* dst, Tensor src, size_t bytes) = 0;
  // Parameter values (acc) from and to fp32 host arrays, waiting; dst (act) converted from src (acc).
  virtual void writeParams(Tensor dst, const float* src, size_t n) = 0;
  virtual void readParams(float* dst, Tensor src, size_t n) = 0;
  virtual void convert(Tensor dst, Tensor src, size_t n) = 0;
  virtual void synchronize() = 0;
  virtual void bindThread() {}  // a thread other than the rank's is about to call
  virtual void settle() {}      // a traced span ends: its work is done when this returns

  virtual void embedding(Tensor out, Tensor tokens, Tensor wte, Tensor wpe) = 0;
  virtual void embeddingBackward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) = 0;
  virtual void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b) = 0;
  virtual void layerNormBackward(Tensor dx, Tensor dw, Tensor db, Tensor dout, Tensor x, Tensor w,
                                 Tensor mean, Tensor rstd) = 0;
  virtual void linear(Tensor y, Tensor x, Tensor w, Tensor b, int n, int in, int out) = 0;
  virtual void linearBackward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, int n, int in,
                              int out) = 0;
  virtual void gelu(Tensor y, Tensor x, size_t n) = 0;
  virtual void geluBackward(Tensor dx, Tensor x, Tensor dy, size_t n) = 0;
  virtual void residual(Tensor out, Tensor x, Tensor z, Tensor bias) = 0;  // x + z + bias
  // Fused operations a backend may run in fewer passes, each by default the operations it stands for
  // (stage_ops.cpp): r = x + z + bias, then LayerNorm of r (the residual and the LayerNorm after it).
  virtual void residualLayerNorm(Tensor r, Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor z,
                                 Tensor bias, Tensor w, Tensor b);
  // The FFN y = gelu(x W1ᵀ + b1) W2ᵀ + b2 over n rows, C_ wide in and out, `hidden` inside (proj_b
  // optional), pre-activation and activation kept; its backward pass (dpre [n, hidden]: the
  // pre-activation's gradient, overwritten; dx and the gradients accumulated, g.proj_b += Σ dy even where
  // the forward pass left the bias to the residual). Empty gradient tensors (a split backward's B pass)
  // compute none: dpre is what its W pass computes them from.
  struct Ffn {
    Tensor fc_w, fc_b, proj_w, proj_b;
  };
  virtual void ffn(Tensor y, Tensor pre, Tensor act, Tensor x, const Ffn& w, int n, int hidden);
  virtual void ffnBackward(Tensor dx, const Ffn& g, Tensor dpre, Tensor dy, Tensor x, Tensor pre, Tensor act,
                           const Ffn& w, int n, int hidden);
  // A rank's experts, FFNs F_ wide, expert e over the rows rows[e]..rows[e+1] of x, pre, act, y (dy, dx,
  // dpre): one call for all of them; g as ffnBackward's, for every expert or none.
  virtual void experts(Tensor y, Tensor pre, Tensor act, Tensor x, const std::vector<Ffn>& w,
                       const std::vector<int>& rows);
  virtual void expertsBackward(Tensor dx, const std::vector<Ffn>& g, Tensor dpre, Tensor dy, Tensor x,
                               Tensor pre, Tensor act, const std::vector<Ffn>& w,
                               const std::vector<int>& rows);
  // saved: what the backward pass needs besides qkv and out (reserved here); dqkv is overwritten.
  virtual void attention(Tensor out, Buffer& saved, Tensor qkv) = 0;
  virtual void attentionBackward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor saved) = 0;
  // logits become their loss's gradient times scale; *sum (a double) += the losses.
  virtual void crossEntropy(Tensor logits, Tensor targets, double scale, Tensor sum) = 0;

  // Softmax, top-K and capacity; the aux loss (*sum += it; f kept for the backward pass); the kept
  // assignments ordered by expert, offsets [E+1] of each expert's slots; dprobs += the aux loss's
  // gradient and dlogits = the softmax's.
  virtual void router(Tensor probs, Tensor choice, Tensor keep, Tensor logits, int capacity) = 0;
  virtual void auxLoss(Tensor f, Tensor sum, Tensor probs, Tensor choice) = 0;
  virtual void expertOrder(Tensor order, Tensor offsets, Tensor slot_of, Tensor choice, Tensor keep) = 0;
  virtual void routerBackward(Tensor dlogits, Tensor dprobs, Tensor probs, Tensor f, double daux) = 0;
  // The slots' token rows; the rows, weighted by their probabilities, added back to their tokens; both
  // backward passes. oneExpert: the slots are one expert's, so no token appears twice among them.
  virtual void gatherSlots(Tensor out, Tensor x, const Slots& s) = 0;
  virtual void gatherSlotsBackward(Tensor dx, Tensor dout, const Slots& s, bool oneExpert) = 0;
  virtual void scatterSlots(Tensor y, Tensor src, const Slots& s, bool oneExpert) = 0;
  virtual void scatterSlotsBackward(Tensor dsrc, Tensor dprobs, Tensor dy, Tensor src, const Slots& s) = 0;

  // *sum += Σ x²; the clipping coefficient from the reduced sums; an AdamW step of every run of
  // parameters (hp.weightDecay where decay, none elsewhere; copy optional), the same runs every step.
  struct ParamRun {
    Tensor param, copy, grad, m, v;
    size_t n = 0;
    bool decay = false;
  };
  virtual void sumOfSquares(Tensor sum, Tensor x, size_t n) = 0;
  virtual void clip(Tensor sums, double maxNorm) = 0;
  virtual void adamw(const std::vector<ParamRun>& runs, const cpu::AdamWParams& hp, int step) = 0;

 protected:
  virtual std::shared_ptr<void> allocate(size_t bytes) = 0;
  bool recompute_gelu_ = false;
  Buffer dact_;  // ffnBackward's activation gradient, where it is not fused away
};

}  // namespace moescope::engine
