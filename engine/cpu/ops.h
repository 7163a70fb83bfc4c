// The model's operations on the CPU, as free functions over raw row-major arrays (llm.c style). This
// is the reference every other backend is checked against; the math is ../shared/MODEL.md's.
//
// Conventions, for every function below:
// - Templates on the scalar type T; float and double are instantiated (double for gradient checks).
// - Shapes are given in brackets, row-major, last index fastest. B = sequences, T = positions,
//   C = channels, n = rows (tokens), E = experts, K = picks per token, V = vocabulary.
// - Forward functions OVERWRITE their outputs.
// - Backward functions ACCUMULATE (+=) into every gradient they write (inputs and parameters), so
//   residual paths, shared parameters and several micro-batches add up. Zero them before the first use.
//   A gradient pointer documented as optional may be nullptr, and is then not computed.
// - Token ids and indices are int32_t.
#pragma once

#include <cstddef>
#include <cstdint>

namespace moescope::engine::cpu {

// ---------------------------------------------------------------------------------------------------
// Embedding (embedding.cpp)

// out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:].
// out [B,T,C] overwritten; tokens [B,T] (each in 0..V-1, not checked); wte [V,C]; wpe [>=T, C].
template <typename T>
void embeddingForward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int Tlen, int C);

// dwte[tokens[b,t],:] += dout[b,t,:]; dwpe[t,:] += dout[b,t,:]. dwte [V,C], dwpe [>=T,C] accumulated;
// either may be nullptr. dout [B,T,C].
template <typename T>
void embeddingBackward(T* dwte, T* dwpe, const T* dout, const int32_t* tokens, int B, int Tlen, int C);

// ---------------------------------------------------------------------------------------------------
// Linear layer y = x Wᵀ + b (linear.cpp)

// y [n,out] overwritten; x [n,in]; w [out,in] (PyTorch layout); b [out] or nullptr (no bias).
template <typename T>
void linearForward(T* y, const T* x, const T* w, const T* b, int n, int in, int out);

// Accumulates dx [n,in] += dy W, dw [out,in] += dyᵀ x, db [out] += Σ_rows dy. dx, dw and db are each
// optional (nullptr: skipped). dy [n,out]; x [n,in]; w [out,in] (needed only when dx is given).
template <typename T>
void linearBackward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, int n, int in, int out);

// ---------------------------------------------------------------------------------------------------
// LayerNorm over the last dimension, eps 1e-5, biased variance (layernorm.cpp)

inline constexpr double kLayerNormEps = 1e-5;

// out [n,C] overwritten; mean [n], rstd [n] overwritten (saved for the backward pass; rstd =
// 1/sqrt(var + eps)); x [n,C]; weight [C]; bias [C].
template <typename T>
void layerNormForward(T* out, T* mean, T* rstd, const T* x, const T* weight, const T* bias, int n, int C);

// Accumulates dx [n,C], dweight [C], dbias [C] (each optional). dout [n,C]; x [n,C]; weight [C]
// (needed only for dx); mean [n], rstd [n] from layerNormForward.
template <typename T>
void layerNormBackward(T* dx, T* dweight, T* dbias, const T* dout, const T* x, const T* weight, const T* mean,
                       const T* rstd, int n, int C);

// ---------------------------------------------------------------------------------------------------
// Causal multi-head self-attention over a packed qkv (attention.cpp)
//
// qkv [B,T,3·Cl] holds per position q | k | v, each Cl = NH·D wide; head h uses columns h·D..h·D+D-1
// of each of the three blocks. NH is the number of heads this rank holds (a tensor-parallel rank
// holds H/tp of them), D the head size. Scores are q·k / sqrt(D), position j > i masked.

// out [B,T,Cl] overwritten (heads concatenated in head order); att [B,NH,T,T] overwritten with the
// softmax probabilities (row i: columns 0..i hold the probabilities, columns > i are set to 0).
template <typename T>
void attentionForward(T* out, T* att, const T* qkv, int B, int Tlen, int NH, int D);

// Accumulates dqkv [B,T,3·Cl]. dout [B,T,Cl]; qkv and att as given to / produced by attentionForward.
template <typename T>
void attentionBackward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tlen, int NH, int D);

// ---------------------------------------------------------------------------------------------------
// GELU, tanh approximation: 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))) (gelu.cpp)

// y [n] overwritten; x [n]. y may alias x.
template <typename T>
void geluForward(T* y, const T* x, size_t n);

// Accumulates dx [n] += gelu'(x) · dy. x [n] is the forward input; dy [n].
template <typename T>
void geluBackward(T* dx, const T* x, const T* dy, size_t n);

// ---------------------------------------------------------------------------------------------------
// Residual and scaling helpers (elementwise.cpp)

// y [n] += x [n].
template <typename T>
void addInPlace(T* y, const T* x, size_t n);

// x [n] *= s.
template <typename T>
void scaleInPlace(T* x, size_t n, T s);

// ---------------------------------------------------------------------------------------------------
// Router: softmax over experts, top-K, capacity (router.cpp)

// p [n,E] overwritten with the row-wise softmax of logits [n,E]. p may alias logits.
template <typename T>
void softmaxForward(T* p, const T* logits, int n, int E);

// Accumulates dlogits [n,E] += p ⊙ (dp − Σ_e dp·p) row-wise. dp [n,E]; p [n,E] from softmaxForward.
template <typename T>
void softmaxBackward(T* dlogits, const T* dp, const T* p, int n, int E);

// choice [n,K] overwritten: choice[i,k] is token i's (k+1)-th pick, the experts in order of decreasing
// p; among equal p the lower expert index comes first. p [n,E]; 1 <= K <= E.
template <typename T>
void routerTopK(int32_t* choice, const T* p, int n, int E, int K);

// The capacity of one expert per routing group of n tokens: ceil(cf·n·K/E), computed in double in that
// order; cf <= 0 gives -1 (no limit).
int expertCapacity(double capacityFactor, int n, int K, int E);

// keep [n,K] overwritten: 1 where the assignment (token i → choice[i,k]) is accepted, 0 where dropped.
// Assignments are taken in MODEL.md's order: all first choices in token order, then all second
// choices, ...; an expert accepts at most `capacity` of them (capacity < 0: all are kept).
// expertLoad [E], optional, is overwritten with the number of kept assignments per expert.
// Returns the number of dropped assignments.
int routerCapacity(uint8_t* keep, int32_t* expertLoad, const int32_t* choice, int n, int E, int K,
                   int capacity);

// Switch Transformer load-balancing loss of one routing group: aux = E · Σ_e f_e · P_e, f_e = (tokens
// whose first choice, choice[i,0], is e) / n (dropped or not), P_e = mean over tokens of p[i,e].
// f [E] overwritten (kept for the backward pass); returns aux. p [n,E]; choice [n,K].
template <typename T>
T auxLossForward(T* f, const T* p, const int32_t* choice, int n, int E, int K);

// Accumulates dp [n,E] += daux · E · f_e / n (f is a constant, not differentiated).
template <typename T>
void auxLossBackward(T* dp, const T* f, T daux, int n, int E);

// ---------------------------------------------------------------------------------------------------
// PPMoE index slicing (moe_slicing.cpp)

// Lists the kept assignments to `expert`, in token order: rows [m] overwritten with the token indices
// (rows must hold n entries). choice [n,K]; keep [n,K] from routerCapacity (nullptr: all kept).
// Returns m, the number of rows. A token picks an expert at most once, so rows has no repeats.
int expertRows(int32_t* rows, const int32_t* choice, const uint8_t* keep, int n, int K, int expert);

// out [m,C] overwritten: out[i,:] = x[rows[i],:]. x [n,C].
template <typename T>
void gatherRows(T* out, const T* x, const int32_t* rows, int m, int C);

// Backward of gatherRows: accumulates dx[rows[i],:] += dout[i,:]. dx [n,C]; dout [m,C].
template <typename T>
void gatherRowsBackward(T* dx, const T* dout, const int32_t* rows, int m, int C);

// Accumulates y[rows[i],:] += p[rows[i],expert] · src[i,:] (the weighted expert output added back to
// its tokens). y [n,C]; src [m,C]; p [n,E] the router probabilities.
template <typename T>
void scatterAddWeighted(T* y, const T* src, const T* p, const int32_t* rows, int m, int C, int E, int expert);

// Backward of scatterAddWeighted: accumulates dsrc[i,:] += p[rows[i],expert] · dy[rows[i],:] and
// dp[rows[i],expert] += dy[rows[i],:] · src[i,:]. dsrc [m,C], dp [n,E] (either optional); dy [n,C].
template <typename T>
void scatterAddWeightedBackward(T* dsrc, T* dp, const T* dy, const T* src, const T* p, const int32_t* rows,
                                int m, int C, int E, int expert);

// ---------------------------------------------------------------------------------------------------
// DPMoE dispatch layout (moe_dispatch.cpp)
//
// With experts spread over ranks in contiguous blocks (rank r holds experts r·E/R .. (r+1)·E/R − 1),
// sorting the kept assignments by expert also groups them by destination rank, so one permutation
// gives the all-to-all send buffer, and each receiving rank finds its experts' rows contiguous.

// order [a] overwritten with the kept assignments (index i·K + k into choice; token i = order[j] / K)
// sorted by expert, then token; order must hold n·K entries. expertCounts [E] overwritten with the
// number of kept assignments per expert. keep [n,K] (nullptr: all kept). Returns a.
int dispatchOrder(int32_t* order, int32_t* expertCounts, const int32_t* choice, const uint8_t* keep, int n,
                  int E, int K);

// rankCounts [R] overwritten with the assignments sent to each rank: sums of expertCounts [E] over
// each rank's E/R experts (E % R == 0).
void dispatchRankCounts(int32_t* rankCounts, const int32_t* expertCounts, int E, int R);

// slotOf [n·K] overwritten: slotOf[order[j]] = j, and −1 for assignments not in order (dropped).
void dispatchSlots(int32_t* slotOf, const int32_t* order, int a, int nK);

// ---------------------------------------------------------------------------------------------------
// Cross-entropy from logits (cross_entropy.cpp)

// losses [n], optional, overwritten with −log softmax(logits[i])[targets[i]]; returns their sum
// (accumulated in double). logits [n,V]; targets [n] (each in 0..V-1, not checked).
template <typename T>
double crossEntropyForward(T* losses, const T* logits, const int32_t* targets, int n, int V);

// Accumulates dlogits [n,V] += scale · (softmax(logits[i]) − onehot(targets[i])). For the mean over N
// tokens pass scale = 1/N. The softmax is recomputed from logits [n,V].
template <typename T>
void crossEntropyBackward(T* dlogits, const T* logits, const int32_t* targets, T scale, int n, int V);

// ---------------------------------------------------------------------------------------------------
// Optimizer: global-norm clipping and AdamW (adamw.cpp)

// Σ x² over x [n], accumulated in double.
template <typename T>
double sumOfSquares(const T* x, size_t n);

// The factor torch.nn.utils.clip_grad_norm_ multiplies every gradient by: min(1, maxNorm /
// (totalNorm + 1e-6)); 1 when maxNorm <= 0 (clipping off).
double clipCoefficient(double totalNorm, double maxNorm);

struct AdamWParams {
  double lr = 3e-4;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weightDecay = 0.0;  // 0 for biases and LayerNorm parameters
};

// One torch.optim.AdamW step (step = 1, 2, ...; the count after this update) on n parameters:
//   g = grad · gradScale; p −= lr·wd·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
//   p −= (lr / (1−β1^step)) · m / (sqrt(v) / sqrt(1−β2^step) + eps).
// param, m, v [n] updated in place (m, v start at 0); grad [n] is read only. gradScale carries the
// clipping coefficient.
template <typename T>
void adamwStep(T* param, const T* grad, T* m, T* v, size_t n, const AdamWParams& hp, int step,
               double gradScale);

}  // namespace moescope::engine::cpu
