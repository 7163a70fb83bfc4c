// Times each CUDA kernel family of engine/cuda at the benchmark model's sizes (d_model 2048, 16 heads,
// sequence 1024, d_ff 8192, vocabulary 50304, 16 sequences, 16 experts top-2, capacity factor 1.25) with
// CUDA events, and prints a Markdown table: mean time per call, and the rate (TFLOP/s for matrix
// products and attention, GB/s of compulsory traffic for the memory-bound kernels). In bf16 it also
// times the fused paths beside what they replace (cuda_fused_bench.cu).
//
//   cuda_kernels_bench [--iters N] [--fp32] [--only NAME_PART]
//   (default: every kernel, 20 timed calls after 3 warm-up calls, bf16)
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda_bench_util.cuh"
#include "cuda_fused_bench.h"
#include "engine/cpu/ops.h"
#include "engine/cuda/adamw.h"
#include "engine/cuda/attention.h"
#include "engine/cuda/attention_cublas.h"
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
#include "engine/cuda/router.h"
#include "engine/cuda/sum.h"

namespace mc = moescope::engine::cuda;
using namespace moescope::bench;

namespace {

constexpr int kBatch = 16, kSeq = 1024, kModel = 2048, kHeads = 16, kFF = 8192, kVocab = 50304;
constexpr int kExperts = 16, kTopK = 2;
constexpr double kCapacityFactor = 1.25;
constexpr int kTokens = kBatch * kSeq;
constexpr size_t kOptimizerParams = size_t{100} << 20;  // 100 Mi fp32 parameters per AdamW call

template <typename T>
void benchAll(Bench& bench, Arena& arena, cudaStream_t s) {
  const size_t N = kTokens, C = kModel, F = kFF, V = kVocab;
  const int D = kModel / kHeads;
  const double e = sizeof(T);
  mc::CublasLt lt;

  // embedding
  const int32_t* tokens = arena.ids(N, 1, kVocab);
  const T* wte = arena.random<T>(V * C, 2, -0.02f, 0.02f);
  const T* wpe = arena.random<T>(size_t(kSeq) * C, 3, -0.02f, 0.02f);
  T* h = arena.alloc<T>(N * C);
  float* dwte = arena.random<float>(V * C, 4, 0, 0);
  float* dwpe = arena.random<float>(size_t(kSeq) * C, 5, 0, 0);
  bench.run("embeddingForward", "16x1024x2048", 0, 3 * N * C * e,
            [&] { mc::embeddingForward(h, tokens, wte, wpe, kBatch, kSeq, kModel, s); });
  bench.run("embeddingBackward", "16x1024x2048", 0, N * C * (e + 8),
            [&] { mc::embeddingBackward(dwte, dwpe, h, tokens, kBatch, kSeq, kModel, s); });

  // LayerNorm
  const T* lnw = arena.random<T>(C, 6, 0.9f, 1.1f);
  const T* lnb = arena.random<T>(C, 7);
  T* a = arena.alloc<T>(N * C);
  float* mean = arena.alloc<float>(N);
  float* rstd = arena.alloc<float>(N);
  T* dh = arena.random<T>(N * C, 8);
  const T* da = arena.random<T>(N * C, 9);
  float* dlnw = arena.random<float>(C, 10, 0, 0);
  float* dlnb = arena.random<float>(C, 11, 0, 0);
  bench.run("layerNormForward", "16384x2048", 0, 2 * N * C * e,
            [&] { mc::layerNormForward(a, mean, rstd, h, lnw, lnb, kTokens, kModel, s); });
  bench.run("layerNormBackward", "16384x2048", 0, 4 * N * C * e,
            [&] { mc::layerNormBackward(dh, dlnw, dlnb, da, h, lnw, mean, rstd, kTokens, kModel, s); });

  // linear layers (cuBLASLt)
  struct Linear {
    const char* name;
    size_t in, out;
    bool bias;
  };
  const Linear linears[] = {{"linear qkv", C, 3 * C, true},
                            {"linear attn proj", C, C, true},
                            {"linear fc", C, F, true},
                            {"linear fc proj", F, C, true},
                            {"linear lm_head", C, V, false}};
  for (const Linear& l : linears) {
    const T* x = arena.random<T>(N * l.in, 12);
    const T* w = arena.random<T>(l.out * l.in, 13, -0.02f, 0.02f);
    const T* b = arena.random<T>(l.out, 14);
    T* y = arena.alloc<T>(N * l.out);
    T* dx = arena.random<T>(N * l.in, 15, 0, 0);
    float* dw = arena.random<float>(l.out * l.in, 16, 0, 0);
    float* db = arena.random<float>(l.out, 17, 0, 0);
    const std::string shape = std::to_string(N) + "x" + std::to_string(l.in) + " -> " + std::to_string(l.out);
    const double flops = 2.0 * N * l.in * l.out;
    bench.run(std::string(l.name) + " forward", shape, flops, 0, [&] {
      mc::linearForward(lt, y, x, w, l.bias ? b : nullptr, kTokens, int(l.in), int(l.out), s);
    });
    bench.run(std::string(l.name) + " backward", shape, 2 * flops, 0, [&] {
      mc::linearBackward(lt, dx, dw, l.bias ? db : nullptr, y, x, w, kTokens, int(l.in), int(l.out), s);
    });
  }

  // attention
  {
    const T* qkv = arena.random<T>(N * 3 * C, 18);
    T* out = arena.alloc<T>(N * C);
    float* lse = arena.alloc<float>(size_t(kBatch) * kHeads * kSeq);
    float* work = arena.alloc<float>(size_t(kBatch) * kHeads * kSeq);
    T* dqkv = arena.random<T>(N * 3 * C, 19, 0, 0);
    const T* dout = arena.random<T>(N * C, 20);
    // causal: half of the 2·T²·D multiply-adds of QKᵀ and PV per head
    const double flops = 2.0 * kBatch * kHeads * double(kSeq) * kSeq * D;
    bench.run("attentionForward", "B16 T1024 H16 D128", flops, 0,
              [&] { mc::attentionForward(out, lse, qkv, kBatch, kSeq, kHeads, D, s); });
    bench.run("attentionBackward", "B16 T1024 H16 D128", 2.5 * flops, 0,
              [&] { mc::attentionBackward(dqkv, dout, qkv, out, lse, work, kBatch, kSeq, kHeads, D, s); });
    // the engine's attention: cuBLASLt products over the full T×T square (rate counted causal, as above)
    T* probs = arena.alloc<T>(size_t(kBatch) * kHeads * kSeq * kSeq);
    auto* ws =
        arena.alloc<unsigned char>(mc::attentionCublasWorkspaceBytes(kBatch, kSeq, kHeads, D, sizeof(T)));
    bench.run("attentionCublasForward", "B16 T1024 H16 D128", flops, 0,
              [&] { mc::attentionCublasForward(lt, out, probs, qkv, ws, kBatch, kSeq, kHeads, D, s); });
    bench.run("attentionCublasBackward", "B16 T1024 H16 D128", 2.5 * flops, 0, [&] {
      mc::attentionCublasBackward(lt, dqkv, dout, qkv, probs, ws, kBatch, kSeq, kHeads, D, s);
    });
    // the engine's bf16 attention: fused tensor-core kernels, nothing of size T×T
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      auto* fws = arena.alloc<unsigned char>(mc::flashAttentionWorkspaceBytes(kBatch, kSeq, kHeads, D));
      bench.run("flashAttentionForward", "B16 T1024 H16 D128", flops, 0,
                [&] { mc::flashAttentionForward(out, lse, qkv, kBatch, kSeq, kHeads, D, s); });
      bench.run("flashAttentionBackward", "B16 T1024 H16 D128", 2.5 * flops, 0, [&] {
        mc::flashAttentionBackward(dqkv, dout, qkv, out, lse, fws, kBatch, kSeq, kHeads, D, s);
      });
    }
  }

  // GELU
  {
    T* x = arena.random<T>(N * F, 21, -3, 3);
    T* y = arena.alloc<T>(N * F);
    T* dx = arena.random<T>(N * F, 22, 0, 0);
    bench.run("geluForward", "16384x8192", 0, 2 * N * F * e, [&] { mc::geluForward(y, x, N * F, s); });
    bench.run("geluBackward", "16384x8192", 0, 4 * N * F * e, [&] { mc::geluBackward(dx, x, y, N * F, s); });
  }

  // router, capacity and PPMoE slicing (a tp=2 rank holding 8 of the 16 experts)
  {
    const T* logits = arena.random<T>(N * kExperts, 23, -2, 2);
    float* p = arena.alloc<float>(N * kExperts);
    int32_t* choice = arena.alloc<int32_t>(N * kTopK);
    uint8_t* keep = arena.alloc<uint8_t>(N * kTopK);
    int32_t* order = arena.alloc<int32_t>(N * kTopK);
    int32_t* offsets = arena.alloc<int32_t>(kExperts + 1);
    int32_t* slotOf = arena.alloc<int32_t>(N * kTopK);
    float* dlogits = arena.random<float>(N * kExperts, 24, 0, 0);
    float* dp = arena.random<float>(N * kExperts, 25, 0, 0);
    const int capacity = moescope::engine::cpu::expertCapacity(kCapacityFactor, kTokens, kTopK, kExperts);
    bench.run("routerSoftmaxTopK", "16384x16 top-2", 0, N * kExperts * (e + 4),
              [&] { mc::routerSoftmaxTopK(p, choice, logits, kTokens, kExperts, kTopK, s); });
    bench.run("routerCapacity", "16384 x 2, cap " + std::to_string(capacity), 0, N * kTopK * 5.0, [&] {
      mc::routerCapacity(keep, nullptr, nullptr, choice, kTokens, kExperts, kTopK, capacity, s);
    });
    bench.run("routerSoftmaxBackward", "16384x16", 0, N * kExperts * 16.0,
              [&] { mc::routerSoftmaxBackward(dlogits, dp, p, kTokens, kExperts, s); });
    bench.run("buildExpertOrder", "16384 x 2 -> 16 experts", 0, N * kTopK * 13.0, [&] {
      mc::buildExpertOrder(order, offsets, slotOf, choice, keep, kTokens, kExperts, kTopK, s);
    });
    std::vector<int32_t> hostOffsets(kExperts + 1);
    MOESCOPE_CUDA_CHECK(cudaStreamSynchronize(s));
    MOESCOPE_CUDA_CHECK(
        cudaMemcpy(hostOffsets.data(), offsets, hostOffsets.size() * 4, cudaMemcpyDeviceToHost));
    const int j0 = hostOffsets[0], m = hostOffsets[kExperts / 2] - hostOffsets[0];
    const T* x = arena.random<T>(N * C, 26);
    T* rowsBuf = arena.alloc<T>(size_t(m) * C);
    T* y = arena.random<T>(N * C, 27, 0, 0);
    T* dx = arena.random<T>(N * C, 28, 0, 0);
    T* drows = arena.random<T>(size_t(m) * C, 29, 0, 0);
    const std::string shape = std::to_string(m) + " rows x 2048";
    bench.run("gatherAssignments", shape, 0, 2.0 * m * C * e,
              [&] { mc::gatherAssignments(rowsBuf, x, order, j0, m, kTopK, kModel, s); });
    bench.run("gatherAssignmentsBackward", shape, 0, (2.0 * N + m) * C * e,
              [&] { mc::gatherAssignmentsBackward(dx, rowsBuf, slotOf, j0, m, kTokens, kTopK, kModel, s); });
    bench.run("combineAssignments", shape, 0, (2.0 * N + m) * C * e, [&] {
      mc::combineAssignments(y, rowsBuf, p, choice, slotOf, j0, m, kTokens, kExperts, kTopK, kModel, s);
    });
    bench.run("combineAssignmentsBackward", shape, 0, 4.0 * m * C * e, [&] {
      mc::combineAssignmentsBackward(drows, dp, y, rowsBuf, p, choice, order, j0, m, kExperts, kTopK, kModel,
                                     s);
    });
  }

  // cross-entropy over the vocabulary
  {
    const T* logits = arena.random<T>(N * V, 30, -4, 4);
    T* dlogits = arena.random<T>(N * V, 31, 0, 0);
    const int32_t* targets = arena.ids(N, 32, kVocab);
    float* losses = arena.alloc<float>(N);
    bench.run("crossEntropyForward", "16384x50304", 0, 2 * N * V * e,
              [&] { mc::crossEntropyForward(losses, logits, targets, kTokens, kVocab, s); });
    bench.run("crossEntropyBackward", "16384x50304", 0, 4 * N * V * e, [&] {
      mc::crossEntropyBackward(dlogits, logits, targets, 1.0f / kTokens, kTokens, kVocab, s);
    });
    // the engine's: loss and gradient in one kernel, the gradient over the logits (here over dlogits,
    // which the calls keep rewriting with values of the same size); bf16 rows are read once (held in
    // registers), beside the general kernel that reads them twice
    bench.run("crossEntropyForwardBackward", "16384x50304", 0, 2 * N * V * e, [&] {
      mc::crossEntropyForwardBackward(losses, dlogits, targets, 1.0f / kTokens, kTokens, kVocab, s);
    });
    bench.run("crossEntropyForwardBackwardTwoReads", "16384x50304", 0, 3 * N * V * e, [&] {
      mc::crossEntropyForwardBackwardTwoReads(losses, dlogits, targets, 1.0f / kTokens, kTokens, kVocab, s);
    });
  }
}

void benchOptimizer(Bench& bench, Arena& arena, cudaStream_t s) {
  const size_t n = kOptimizerParams;
  float* param = arena.random<float>(n, 40, -0.02f, 0.02f);
  float* grad = arena.random<float>(n, 41, -1e-3f, 1e-3f);
  float* m = arena.random<float>(n, 42, 0, 0);
  float* v = arena.random<float>(n, 43, 0, 0);
  __nv_bfloat16* paramBf16 = arena.alloc<__nv_bfloat16>(n);
  double* total = arena.alloc<double>(1);
  float* coef = arena.alloc<float>(1);
  mc::AdamWParams hp;
  hp.weightDecay = 0.1;
  bench.run("accumulateSumOfSquares", "100 Mi fp32", 0, 4.0 * n, [&] {
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(total, 0, sizeof(double), s));
    mc::accumulateSumOfSquares(total, grad, n, s);
    mc::clipCoefficientDevice(coef, total, 1.0, s);
  });
  int step = 1;
  bench.run("adamwStep (+ bf16 copy)", "100 Mi fp32", 0, n * (4.0 * 7 + 2),
            [&] { mc::adamwStep(param, paramBf16, grad, m, v, n, hp, step++, coef, s); });
}

}  // namespace

int main(int argc, char** argv) {
  int iters = 20;
  bool fp32 = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
      iters = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--fp32") == 0) {
      fp32 = true;
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--iters N] [--fp32] [--only NAME_PART]\n", argv[0]);
      return 2;
    }
  }
  if (iters < 1) iters = 1;
  try {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      std::fprintf(stderr, "cuda_kernels_bench: no CUDA device\n");
      return 1;
    }
    cudaDeviceProp prop{};
    MOESCOPE_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs; %d timed calls per kernel\n\n", prop.name, prop.multiProcessorCount,
                iters);
    cudaStream_t stream = nullptr;
    MOESCOPE_CUDA_CHECK(cudaStreamCreate(&stream));
    {
      Arena arena;
      Bench bench(iters, only, stream);
      if (fp32) {
        benchAll<float>(bench, arena, stream);
      } else {
        benchAll<__nv_bfloat16>(bench, arena, stream);
        benchFused(bench, arena, stream);
      }
      benchOptimizer(bench, arena, stream);
      bench.print(fp32 ? "fp32" : "bf16");
    }
    MOESCOPE_CUDA_CHECK(cudaStreamDestroy(stream));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_kernels_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
