// The fused paths of issue 18 beside what they replace, at the benchmark model's sizes (bf16): attention
// through cuDNN against the fused kernels of flash_attention.h (B16, H16, T 1024 and 2048, head sizes 64
// and 128); the FFN's GELU and bias gradients in cuBLASLt's epilogues against separate kernels; the
// residual add with the LayerNorm against the two kernels; AdamW over the model's tensors in one launch
// against a launch per run of tensors; a rank's experts as grouped products against a launch per expert.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cuda_fused_bench.h"
#include "engine/cpu/ops.h"
#include "engine/cuda/adamw.h"
#include "engine/cuda/adamw_multi.h"
#include "engine/cuda/cudnn_attention.h"
#include "engine/cuda/flash_attention.h"
#include "engine/cuda/gelu.h"
#include "engine/cuda/grouped_linear.h"
#include "engine/cuda/layernorm.h"
#include "engine/cuda/layernorm_residual.h"
#include "engine/cuda/linear.h"
#include "engine/cuda/linear_gelu.h"
#include "engine/cuda/residual.h"

namespace moescope::bench {

namespace mc = moescope::engine::cuda;
using Bf16 = __nv_bfloat16;

namespace {

constexpr int kBatch = 16, kHeads = 16, kModel = 2048, kFF = 8192, kVocab = 50304, kLayers = 8;

std::string attentionShape(int T, int D) {
  return "B16 T" + std::to_string(T) + " H16 D" + std::to_string(D);
}

void benchAttention(Bench& bench, Arena& arena, cudaStream_t s) {
  std::unique_ptr<mc::CudnnAttention> cudnn;
  if (mc::cudnnAttentionAvailable()) {
    try {
      cudnn = std::make_unique<mc::CudnnAttention>();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cuDNN attention unavailable: %s\n", e.what());
    }
  } else {
    std::fprintf(stderr, "cuDNN attention unavailable: %s\n", mc::cudnnAttentionUnavailableReason().c_str());
  }
  for (const int T : {1024, 2048}) {
    for (const int D : {128, 64}) {
      const size_t N = size_t(kBatch) * T, C = size_t(kHeads) * D;
      const std::string shape = attentionShape(T, D);
      const Bf16* qkv = arena.random<Bf16>(N * 3 * C, 101 + T + D);
      Bf16* out = arena.alloc<Bf16>(N * C);
      float* lse = arena.alloc<float>(size_t(kBatch) * kHeads * T);
      Bf16* dqkv = arena.random<Bf16>(N * 3 * C, 102, 0, 0);
      const Bf16* dout = arena.random<Bf16>(N * C, 103);
      // causal: half of the 2·T²·D multiply-adds of QKᵀ and PV per head; the backward pass 2.5 times that
      const double flops = 2.0 * kBatch * kHeads * double(T) * T * D;
      auto* fws = arena.alloc<unsigned char>(mc::flashAttentionWorkspaceBytes(kBatch, T, kHeads, D));
      bench.run("flashAttentionForward", shape, flops, 0,
                [&] { mc::flashAttentionForward(out, lse, qkv, kBatch, T, kHeads, D, s); });
      bench.run("flashAttentionBackward", shape, 2.5 * flops, 0,
                [&] { mc::flashAttentionBackward(dqkv, dout, qkv, out, lse, fws, kBatch, T, kHeads, D, s); });
      if (!cudnn) continue;
      try {
        auto* cws = arena.alloc<unsigned char>(cudnn->workspaceBytes(kBatch, T, kHeads, D));
        std::fprintf(stderr, "%s: %s\n", shape.c_str(), cudnn->describe(kBatch, T, kHeads, D).c_str());
        bench.run("cudnnAttentionForward", shape, flops, 0,
                  [&] { cudnn->forward(out, lse, qkv, cws, kBatch, T, kHeads, D, s); });
        bench.run("cudnnAttentionBackward", shape, 2.5 * flops, 0,
                  [&] { cudnn->backward(dqkv, dout, qkv, out, lse, cws, kBatch, T, kHeads, D, s); });
      } catch (const std::exception& e) {
        std::fprintf(stderr, "cuDNN attention at %s: %s\n", shape.c_str(), e.what());
      }
    }
  }
}

void benchEpilogues(Bench& bench, Arena& arena, cudaStream_t s) {
  const int N = kBatch * 1024;
  const size_t C = kModel, F = kFF, n = size_t(N);
  mc::CublasLt lt;
  const Bf16* x = arena.random<Bf16>(n * C, 111);
  const Bf16* wfc = arena.random<Bf16>(F * C, 112, -0.02f, 0.02f);
  const Bf16* bfc = arena.random<Bf16>(F, 113);
  const Bf16* wproj = arena.random<Bf16>(C * F, 114, -0.02f, 0.02f);
  Bf16* pre = arena.alloc<Bf16>(n * F);
  Bf16* act = arena.alloc<Bf16>(n * F);
  Bf16* dact = arena.alloc<Bf16>(n * F);
  Bf16* dpre = arena.random<Bf16>(n * F, 115, 0, 0);
  const Bf16* dz = arena.random<Bf16>(n * C, 116);
  float* dbfc = arena.random<float>(F, 117, 0, 0);
  const std::string shape = std::to_string(N) + "x2048 -> 8192";
  const double fcFlops = 2.0 * N * C * F;
  bool fused = false;
  bench.run("fc + GELU, epilogue (GELU_AUX_BIAS)", shape, fcFlops, 0,
            [&] { fused = mc::linearGeluForward(lt, act, pre, x, wfc, bfc, N, int(C), int(F), s); });
  std::fprintf(stderr, "  linearGeluForward ran %s\n", fused ? "the epilogue" : "separate kernels");
  bench.run("fc + GELU, separate kernels", shape, fcFlops, 0, [&] {
    mc::linearForward(lt, pre, x, wfc, bfc, N, int(C), int(F), s);
    mc::geluForward(act, pre, n * F, s);
  });
  bench.run("fc proj dx + dGELU + fc db, epilogue (DGELU_BGRAD)", shape, fcFlops, 0,
            [&] { fused = mc::linearBackwardDgelu(lt, dpre, dbfc, dz, wproj, pre, N, int(F), int(C), s); });
  std::fprintf(stderr, "  linearBackwardDgelu ran %s\n", fused ? "the epilogue" : "separate kernels");
  bench.run("fc proj dx + dGELU + fc db, separate kernels", shape, fcFlops, 0, [&] {
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dact, 0, n * F * sizeof(Bf16), s));
    mc::linearBackward<Bf16>(lt, dact, nullptr, nullptr, dz, nullptr, wproj, N, int(F), int(C), s);
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dpre, 0, n * F * sizeof(Bf16), s));
    mc::geluBackward(dpre, pre, dact, n * F, s);
    mc::biasGradient(dbfc, dpre, N, int(F), s);
  });
  // Without the bias gradient (which BGRADB then gives in the first layer's weight-gradient product): the
  // DGELU epilogue alone, and the default: the product written over dpre, GELU' in place.
  bench.run("fc proj dx + dGELU, epilogue (DGELU)", shape, fcFlops, 0,
            [&] { mc::linearBackwardDgelu(lt, dpre, nullptr, dz, wproj, pre, N, int(F), int(C), s); });
  bench.run("fc proj dx + dGELU, product then GELU' in place", shape, fcFlops, 0, [&] {
    mc::linearBackward<Bf16>(lt, dpre, nullptr, nullptr, dz, nullptr, wproj, N, int(F), int(C), s,
                             /*overwriteDx=*/true);
    mc::geluBackwardInPlace(dpre, pre, n * F, s);
  });
  // The weight gradient with the bias gradient: qkv's shape (the widest biased product but the FFN's)
  {
    const size_t out = 3 * C;
    const Bf16* dy = arena.random<Bf16>(n * out, 118);
    float* dw = arena.random<float>(out * C, 119, 0, 0);
    float* db = arena.random<float>(out, 120, 0, 0);
    const std::string qkv = std::to_string(N) + "x2048 -> 6144";
    const double flops = 2.0 * N * C * out;
    const int64_t before = lt.epilogueFallbacks();
    bench.run("qkv dW + db, epilogue (BGRADB)", qkv, flops, 0,
              [&] { mc::linearBackward<Bf16>(lt, nullptr, dw, db, dy, x, nullptr, N, int(C), int(out), s); });
    std::fprintf(stderr, "  BGRADB %s\n", lt.epilogueFallbacks() == before ? "ran" : "was not offered");
    bench.run("qkv dW + db, separate kernel", qkv, flops, 0, [&] {
      mc::linearBackward<Bf16>(lt, nullptr, dw, nullptr, dy, x, nullptr, N, int(C), int(out), s);
      mc::biasGradient(db, dy, N, int(out), s);
    });
  }
  for (const std::string& why : lt.epilogueRefusals()) std::fprintf(stderr, "  %s\n", why.c_str());
}

void benchResidualLayerNorm(Bench& bench, Arena& arena, cudaStream_t s) {
  const int N = kBatch * 1024;
  const size_t C = kModel, n = size_t(N);
  Bf16* x = arena.random<Bf16>(n * C, 131);
  const Bf16* z = arena.random<Bf16>(n * C, 132);
  const Bf16* b = arena.random<Bf16>(C, 133);
  const Bf16* w = arena.random<Bf16>(C, 134, 0.9f, 1.1f);
  const Bf16* lb = arena.random<Bf16>(C, 135);
  Bf16* r = arena.alloc<Bf16>(n * C);
  Bf16* out = arena.alloc<Bf16>(n * C);
  float* mean = arena.alloc<float>(n);
  float* rstd = arena.alloc<float>(n);
  const double e = sizeof(Bf16);
  bench.run("residual + LayerNorm, one pass", "16384x2048", 0, 4.0 * n * C * e,
            [&] { mc::residualLayerNormForward(r, out, mean, rstd, x, z, b, w, lb, N, int(C), s); });
  bench.run("residual + LayerNorm, two kernels", "16384x2048", 0, 4.0 * n * C * e, [&] {
    mc::residualAdd(r, x, z, b, N, int(C), s);
    mc::layerNormForward(out, mean, rstd, r, w, lb, N, int(C), s);
  });
}

// The dense backbone's parameters in the stage's order, with the weight decay of each (matrices yes).
std::vector<std::pair<size_t, bool>> modelTensors() {
  const size_t C = kModel, F = kFF, V = kVocab;
  std::vector<std::pair<size_t, bool>> t = {{V * C, true}, {1024 * C, true}};
  for (int l = 0; l < kLayers; ++l) {
    for (auto p : std::vector<std::pair<size_t, bool>>{{C, false},
                                                       {C, false},
                                                       {3 * C * C, true},
                                                       {3 * C, false},
                                                       {C * C, true},
                                                       {C, false},
                                                       {C, false},
                                                       {C, false},
                                                       {F * C, true},
                                                       {F, false},
                                                       {C * F, true},
                                                       {C, false}})
      t.push_back(p);
  }
  t.push_back({C, false});
  t.push_back({C, false});
  t.push_back({V * C, true});
  return t;
}

void benchOptimizerLaunches(Bench& bench, Arena& arena, cudaStream_t s) {
  const auto tensors = modelTensors();
  std::vector<size_t> offsets;
  size_t total = 0;
  for (const auto& [n, decay] : tensors) {
    offsets.push_back(total);
    total += (n + 63) / 64 * 64;  // the stage's 256-byte alignment
  }
  float* p = arena.random<float>(total, 141, -0.02f, 0.02f);
  float* g = arena.random<float>(total, 142, -1e-3f, 1e-3f);
  float* m = arena.random<float>(total, 143, 0, 0);
  float* v = arena.random<float>(total, 144, 0, 0);
  Bf16* pb = arena.alloc<Bf16>(total);
  float* coef = arena.random<float>(1, 145, 1, 1);
  std::vector<mc::AdamWTensor> list;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t o = offsets[i];
    list.push_back({p + o, pb + o, g + o, m + o, v + o, tensors[i].first, tensors[i].second});
  }
  const mc::AdamWMultiTensor multi(list);
  mc::AdamWParams hp;
  hp.weightDecay = 0.1;
  const std::string shape =
      std::to_string(tensors.size()) + " tensors, " + std::to_string(multi.elements() >> 20) + " Mi fp32";
  const double bytes = double(multi.elements()) * (4.0 * 7 + 2);
  int step = 1;
  bench.run("AdamW, one launch for all tensors", shape, 0, bytes, [&] { multi.step(hp, step++, coef, s); });
  // the stage's way: one launch per run of neighbouring tensors with the same weight decay
  int launches = 0;
  bench.run("AdamW, a launch per run of tensors", shape, 0, bytes, [&] {
    launches = 0;
    size_t i = 0;
    while (i < tensors.size()) {
      size_t j = i + 1;
      while (j < tensors.size() && tensors[j].second == tensors[i].second) ++j;
      mc::AdamWParams one = hp;
      one.weightDecay = tensors[i].second ? hp.weightDecay : 0.0;
      const size_t o = offsets[i], n = offsets[j - 1] + tensors[j - 1].first - o;
      mc::adamwStep(p + o, pb + o, g + o, m + o, v + o, n, one, step, coef, s);
      ++launches;
      i = j;
    }
    ++step;
  });
  std::fprintf(stderr, "  %d launches per step the old way\n", launches);
}

// A rank's experts: rows per expert as a top-2 router with capacity factor 1.25 gives them (about
// tokens·2/E each, some at the capacity), forward and backward of the FFN.
void benchExperts(Bench& bench, Arena& arena, cudaStream_t s, int experts) {
  const int tokens = kBatch * 1024, K = 2;
  const size_t C = kModel, F = kFF;
  const int capacity = engine::cpu::expertCapacity(1.25, tokens, K, 16);
  std::vector<int> rowBegin(experts + 1, 0);
  for (int e = 0; e < experts; ++e) {
    // deterministic spread of ±20% around the mean, capped at the capacity
    const int mean = tokens * K / 16;
    const int rows = std::min(capacity, mean + (mean / 5) * ((e * 7) % 5 - 2) / 2);
    rowBegin[e + 1] = rowBegin[e] + rows;
  }
  const size_t rows = size_t(rowBegin.back());
  mc::CublasLt lt;
  mc::GroupedLinear gl(lt);
  const Bf16* xg = arena.random<Bf16>(rows * C, 151);
  const Bf16* wfc = arena.random<Bf16>(experts * F * C, 152, -0.02f, 0.02f);
  const Bf16* bfc = arena.random<Bf16>(experts * F, 153);
  const Bf16* wp = arena.random<Bf16>(experts * C * F, 154, -0.02f, 0.02f);
  const Bf16* bp = arena.random<Bf16>(experts * C, 155);
  Bf16* pre = arena.alloc<Bf16>(rows * F);
  Bf16* act = arena.alloc<Bf16>(rows * F);
  Bf16* yg = arena.alloc<Bf16>(rows * C);
  const Bf16* dyg = arena.random<Bf16>(rows * C, 156);
  Bf16* dact = arena.alloc<Bf16>(rows * F);
  Bf16* dpre = arena.alloc<Bf16>(rows * F);
  Bf16* dxg = arena.alloc<Bf16>(rows * C);
  float* dwfc = arena.random<float>(experts * F * C, 157, 0, 0);
  float* dbfc = arena.random<float>(experts * F, 158, 0, 0);
  float* dwp = arena.random<float>(experts * C * F, 159, 0, 0);
  float* dbp = arena.random<float>(experts * C, 160, 0, 0);
  std::vector<const Bf16*> fcW, fcB, pW, pB;
  std::vector<float*> dfcW, dfcB, dpW, dpB;
  for (int e = 0; e < experts; ++e) {
    fcW.push_back(wfc + e * F * C);
    fcB.push_back(bfc + e * F);
    pW.push_back(wp + e * C * F);
    pB.push_back(bp + e * C);
    dfcW.push_back(dwfc + e * F * C);
    dfcB.push_back(dbfc + e * F);
    dpW.push_back(dwp + e * C * F);
    dpB.push_back(dbp + e * C);
  }
  const std::string shape = std::to_string(experts) + " experts, " + std::to_string(rows) + " rows";
  const double flops = 4.0 * rows * C * F;  // two products
  const std::string tag = " (" + std::to_string(experts) + " experts)";
  bench.run("experts forward, a launch per expert" + tag, shape, flops, 0, [&] {
    for (int e = 0; e < experts; ++e) {
      const int m = rowBegin[e + 1] - rowBegin[e];
      const size_t r = rowBegin[e];
      mc::linearForward(lt, pre + r * F, xg + r * C, fcW[e], fcB[e], m, int(C), int(F), s);
      mc::geluForward(act + r * F, pre + r * F, size_t(m) * F, s);
      mc::linearForward(lt, yg + r * C, act + r * F, pW[e], pB[e], m, int(F), int(C), s);
    }
  });
  bench.run("experts forward, grouped" + tag, shape, flops, 0, [&] {
    gl.forward(act, xg, fcW, fcB, rowBegin, int(C), int(F), s, pre);
    gl.forward(yg, act, pW, pB, rowBegin, int(F), int(C), s);
  });
  bench.run("experts backward, a launch per expert" + tag, shape, 2 * flops, 0, [&] {
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dxg, 0, rows * C * sizeof(Bf16), s));
    for (int e = 0; e < experts; ++e) {
      const int m = rowBegin[e + 1] - rowBegin[e];
      const size_t r = rowBegin[e];
      MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dact, 0, size_t(m) * F * sizeof(Bf16), s));
      mc::linearBackward(lt, dact, dpW[e], dpB[e], dyg + r * C, act + r * F, pW[e], m, int(F), int(C), s);
      MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dpre, 0, size_t(m) * F * sizeof(Bf16), s));
      mc::geluBackward(dpre, pre + r * F, dact, size_t(m) * F, s);
      mc::linearBackward(lt, dxg + r * C, dfcW[e], dfcB[e], dpre, xg + r * C, fcW[e], m, int(C), int(F), s);
    }
  });
  bench.run("experts backward, grouped" + tag, shape, 2 * flops, 0, [&] {
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dxg, 0, rows * C * sizeof(Bf16), s));
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dact, 0, rows * F * sizeof(Bf16), s));
    gl.backward(dact, dpW, dpB, dyg, act, pW, rowBegin, int(F), int(C), s);
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(dpre, 0, rows * F * sizeof(Bf16), s));
    mc::geluBackward(dpre, pre, dact, rows * F, s);
    gl.backward(dxg, dfcW, dfcB, dpre, xg, fcW, rowBegin, int(C), int(F), s);
  });
  std::fprintf(stderr, "  grouped products: %lld as one grouped GEMM, %lld group by group\n",
               static_cast<long long>(gl.groupedProducts()), static_cast<long long>(gl.loopedProducts()));
}

}  // namespace

// Each group on its own: one that fails (a path a library does not offer here) is reported and the others
// still run and print.
void benchFused(Bench& bench, Arena& arena, cudaStream_t stream) {
  const auto group = [&](const char* name, auto run) {
    try {
      run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cuda_kernels_bench: %s skipped: %s\n", name, e.what());
    }
  };
  group("attention", [&] { benchAttention(bench, arena, stream); });
  group("epilogues", [&] { benchEpilogues(bench, arena, stream); });
  group("residual + LayerNorm", [&] { benchResidualLayerNorm(bench, arena, stream); });
  group("optimizer launches", [&] { benchOptimizerLaunches(bench, arena, stream); });
  group("experts (16)", [&] { benchExperts(bench, arena, stream, 16); });
  group("experts (8)", [&] { benchExperts(bench, arena, stream, 8); });
}

}  // namespace moescope::bench
