// DPMoE dispatch layout: the kept assignments ordered by expert (and so by destination rank), the
// counts per expert and per rank for the all-to-all, and the inverse permutation.
#include <vector>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {

int dispatchOrder(int32_t* order, int32_t* expertCounts, const int32_t* choice, const uint8_t* keep, int n,
                  int E, int K) {
  for (int e = 0; e < E; ++e) expertCounts[e] = 0;
  const size_t nK = static_cast<size_t>(n) * K;
  for (size_t idx = 0; idx < nK; ++idx) {
    if (keep == nullptr || keep[idx]) ++expertCounts[choice[idx]];
  }
  // counting sort: each expert's first slot, then its assignments in token order (idx ascending)
  std::vector<int32_t> cursor(static_cast<size_t>(E));
  int32_t a = 0;
  for (int e = 0; e < E; ++e) {
    cursor[static_cast<size_t>(e)] = a;
    a += expertCounts[e];
  }
  for (size_t idx = 0; idx < nK; ++idx) {
    if (keep == nullptr || keep[idx])
      order[cursor[static_cast<size_t>(choice[idx])]++] = static_cast<int32_t>(idx);
  }
  return a;
}

void dispatchRankCounts(int32_t* rankCounts, const int32_t* expertCounts, int E, int R) {
  const int perRank = E / R;
  for (int r = 0; r < R; ++r) {
    int32_t c = 0;
    for (int e = r * perRank; e < (r + 1) * perRank; ++e) c += expertCounts[e];
    rankCounts[r] = c;
  }
}

void dispatchSlots(int32_t* slotOf, const int32_t* order, int a, int nK) {
  for (int i = 0; i < nK; ++i) slotOf[i] = -1;
  for (int j = 0; j < a; ++j) slotOf[order[j]] = j;
}

}  // namespace moescope::engine::cpu
