// The operations a backend gives the stage pass (engine/stage_pass.h): memory of its kind (host arrays
// for the CPU, device arrays on one stream for CUDA) and the model's kernels over it, each as its
// engine/cpu/ops.h reference defines it (outputs overwritten, gradients accumulated). The pass decides
// what runs in which order, which span it belongs to and what is communicated; an implementation only
// computes, in its element types (act: activations and the weights' compute copy; acc: master weights,
// gradients, Adam state, router probabilities and LayerNorm statistics), and keeps what it alone needs
// (a cuBLASLt handle, workspaces). Shapes follow ops.h; MoE operations work on the stage's routing groups
// (StageShape's N, C, E, K).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/communicator.h"
#include "engine/cpu/ops.h"
#include "engine/stage_shape.h"

namespace moescope::engine {

// A backend's array (not owned): where it starts, and its element type.
struct Tensor {
  void* data = nullptr;
  DType type = DType::F32;
  Tensor at(size_t elements) const { return {static_cast<char*>(data) + elements * dtypeSize(type), type}; }
  template <class U>
  U* as() const {
    return static_cast<U*>(data);
  }
};

// A backend's array that only grows (StageOps::reserve), freed with its last copy.
struct Buffer : Tensor {
  size_t bytes = 0;
  std::shared_ptr<void> memory;
};

// The slots [j0, j0+m) of one routing group's kept assignments ordered by expert (expertOrder), with
// the router's probabilities and picks they refer to.
struct Slots {
  Tensor order, slot_of, choice, probs;
  int j0 = 0, m = 0;
};

class StageOps : protected StageShape {
 public:
  explicit StageOps(const RankSetup& setup) : StageShape(setup) {}
  virtual ~StageOps() = default;
  virtual DType act() const = 0;
  virtual DType acc() const = 0;

  // At least n elements of type (the contents are lost when it grows).
  Tensor reserve(Buffer& b, size_t n, DType type) {
    const size_t bytes = n * dtypeSize(type);
    if (bytes > b.bytes || !b.memory) {
      b.memory.reset();
      b.memory = allocate(bytes > 0 ? bytes : 1);
      b.bytes = bytes;
    }
    b.data = b.memory.get();
    b.type = type;
    return b;
  }
  virtual void zero(Tensor t, size_t n) = 0;
  virtual void copy(Tensor dst, Tensor src, size_t n) = 0;
  // Host bytes to and from the backend's memory, in stream order; download waits for them.
  virtual void upload(Tensor dst, const void* src, size_t bytes) = 0;
  virtual void download(void* dst, Tensor src, size_t bytes) = 0;
  // Parameter values from and to fp32 host arrays (acc type), waiting; the compute copy from them.
  virtual void writeParams(Tensor dst, const float* src, size_t n) = 0;
  virtual void readParams(float* dst, Tensor src, size_t n) = 0;
  virtual void convert(Tensor dst, Tensor src, size_t n) = 0;
  virtual void synchronize() = 0;
  virtual void bindThread() {}  // a thread other than the rank's is about to call
  virtual void settle() {}      // a traced span ends: its work is done once this returns

  virtual void embedding(Tensor out, Tensor tokens, Tensor wte, Tensor wpe) = 0;
  virtual void embeddingBackward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) = 0;
  virtual void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b, int n,
                         int C) = 0;
  virtual void layerNormBackward(Tensor dx, Tensor dw, Tensor db, Tensor dout, Tensor x, Tensor w,
                                 Tensor mean, Tensor rstd, int n, int C) = 0;
  virtual void linear(Tensor y, Tensor x, Tensor w, Tensor b, int n, int in, int out) = 0;
  virtual void linearBackward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, int n, int in,
                              int out) = 0;
  virtual void gelu(Tensor y, Tensor x, size_t n) = 0;
  virtual void geluBackward(Tensor dx, Tensor x, Tensor dy, size_t n) = 0;
  // out = x + z + bias (bias [C] optional); out may alias x or z.
  virtual void residual(Tensor out, Tensor x, Tensor z, Tensor bias, int n, int C) = 0;
  // This rank's heads over the stage's micro-batch; saved: what the backward pass needs besides qkv
  // and out (reserved here).
  virtual void attention(Tensor out, Buffer& saved, Tensor qkv) = 0;
  virtual void attentionBackward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor saved) = 0;
  // logits [N,V] become their loss gradient scaled by scale; *sum (a double, optional) += the losses.
  virtual void crossEntropy(Tensor logits, Tensor targets, double scale, Tensor sum) = 0;

  // Router softmax, top-K and capacity; aux loss (f kept for the backward pass, *sum += aux when given);
  // the kept assignments ordered by expert, offsets [E+1] of each expert's slots; their backward.
  virtual void router(Tensor probs, Tensor choice, Tensor keep, Tensor logits, int capacity) = 0;
  virtual void auxLoss(Tensor f, Tensor sum, Tensor probs, Tensor choice) = 0;
  virtual void expertOrder(Tensor order, Tensor offsets, Tensor slot_of, Tensor choice, Tensor keep) = 0;
  // dprobs += the aux loss's gradient; dlogits overwritten with the softmax's.
  virtual void routerBackward(Tensor dlogits, Tensor dprobs, Tensor probs, Tensor f, double daux) = 0;
  // Rows of the slots' tokens; the weighted rows added back to their tokens, and both backward passes.
  // oneExpert: the slots are one expert's, so each token appears once among them.
  virtual void gatherSlots(Tensor out, Tensor x, const Slots& s) = 0;
  virtual void gatherSlotsBackward(Tensor dx, Tensor dout, const Slots& s, bool oneExpert) = 0;
  virtual void scatterSlots(Tensor y, Tensor src, const Slots& s, bool oneExpert) = 0;
  virtual void scatterSlotsBackward(Tensor dsrc, Tensor dprobs, Tensor dy, Tensor src, const Slots& s) = 0;

  // *sum += Σ x²; the clipping coefficient from the reduced sums [3]; one AdamW step (copy optional).
  virtual void sumOfSquares(Tensor sum, Tensor x, size_t n) = 0;
  virtual void clip(Tensor sums, double maxNorm) = 0;
  virtual void adamw(Tensor param, Tensor copy, Tensor grad, Tensor m, Tensor v, size_t n,
                     const cpu::AdamWParams& hp, int step) = 0;

 protected:
  virtual std::shared_ptr<void> allocate(size_t bytes) = 0;
};

}  // namespace moescope::engine
