// PPMoE index slicing on the GPU: the kept assignments ordered by expert, gathering their token rows
// into one contiguous buffer, and adding the weighted expert outputs back to their tokens, with the
// backward passes. Deterministic: no atomics. (CPU reference: engine/cpu/ops.h expertRows, gatherRows,
// scatterAddWeighted and their backward passes, dispatchOrder, dispatchSlots.)
//
// An assignment is index a = i·K + k into choice [n,K] (token i = a / K). A range of slots [j0, j0+m)
// of the order, e.g. offsets[e0]..offsets[e1] for the experts e0..e1−1 a rank holds, is one slice.
// T = float or __nv_bfloat16; p (router probabilities) is fp32.
//
// DPMoE uses the same order as its all-to-all layout: with rank r holding experts r·E/R..(r+1)·E/R − 1,
// gatherAssignments over all slots (j0 = 0, m = offsets[E]) builds the send buffer grouped by
// destination rank, rank r's count is offsets[(r+1)·E/R] − offsets[r·E/R], and combineAssignments over
// the returned rows adds the weighted outputs back to their tokens.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::engine::cuda {

inline constexpr int kSlicingMaxExperts = 256;

// order [n·K] overwritten: the kept assignments (keep nullptr: all) sorted by expert, then token, in its
// first offsets[E] entries. offsets [E+1] overwritten: expert e's slots are offsets[e]..offsets[e+1]−1.
// slotOf [n·K] overwritten: the slot of each assignment, −1 for dropped ones. E <= 256; one block.
void buildExpertOrder(int32_t* order, int32_t* offsets, int32_t* slotOf, const int32_t* choice,
                      const uint8_t* keep, int n, int E, int K, cudaStream_t stream);

// out [m,C] overwritten: out[i,:] = x[order[j0+i] / K, :]. x [n,C].
template <typename T>
void gatherAssignments(T* out, const T* x, const int32_t* order, int j0, int m, int K, int C,
                       cudaStream_t stream);

// Backward of gatherAssignments: dx[i,:] += Σ over token i's assignments with slot s in [j0, j0+m) of
// dout[s−j0, :]. dx [n,C]; dout [m,C]; slotOf [n·K].
template <typename T>
void gatherAssignmentsBackward(T* dx, const T* dout, const int32_t* slotOf, int j0, int m, int n, int K,
                               int C, cudaStream_t stream);

// y[i,:] += Σ over token i's assignments (expert e = choice[i,k], slot s in [j0, j0+m)) of
// p[i,e] · src[s−j0, :]. y [n,C]; src [m,C]; p [n,E]; choice, slotOf [n·K].
template <typename T>
void combineAssignments(T* y, const T* src, const float* p, const int32_t* choice, const int32_t* slotOf,
                        int j0, int m, int n, int E, int K, int C, cudaStream_t stream);

// Backward of combineAssignments, per slot row r < m with a = order[j0+r], token i = a / K, expert
// e = choice[a]: dsrc[r,:] += p[i,e] · dy[i,:] and dp[i,e] += dy[i,:] · src[r,:]. dsrc [m,C], dp [n,E]
// (either optional); dy [n,C]; src [m,C].
template <typename T>
void combineAssignmentsBackward(T* dsrc, float* dp, const T* dy, const T* src, const float* p,
                                const int32_t* choice, const int32_t* order, int j0, int m, int E, int K,
                                int C, cudaStream_t stream);

// One expert's slots [j0, j0+m) (offsets[e]..offsets[e+1]), row by row, where each token appears once
// (the PPMoE stage's per-expert scatter and its gather's backward, as the CPU reference does them):
// y[i,:] += p[i,e] · src[r,:] for the slot row r of token i; and dx[i,:] += dout[r,:].
template <typename T>
void scatterExpertRows(T* y, const T* src, const float* p, const int32_t* choice, const int32_t* order,
                       int j0, int m, int E, int K, int C, cudaStream_t stream);
template <typename T>
void gatherExpertRowsBackward(T* dx, const T* dout, const int32_t* order, int j0, int m, int K, int C,
                              cudaStream_t stream);

}  // namespace moescope::engine::cuda
