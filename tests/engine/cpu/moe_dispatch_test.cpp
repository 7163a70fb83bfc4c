#include <gtest/gtest.h>

#include <vector>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {
namespace {

TEST(MoeDispatch, OrderGroupsKeptAssignmentsByExpertThenToken) {
  // 4 tokens, K = 2, E = 4 (2 ranks of 2 experts)
  const std::vector<int32_t> choice = {3, 0, 0, 1, 3, 2, 0, 3};
  const std::vector<uint8_t> keep = {1, 1, 1, 1, 1, 1, 1, 0};
  std::vector<int32_t> order(8, -9), counts(4, -9), ranks(2, -9), slots(8, -9);
  const int a = dispatchOrder(order.data(), counts.data(), choice.data(), keep.data(), 4, 4, 2);
  ASSERT_EQ(a, 7);
  // expert 0: idx 1 (t0), 2 (t1), 6 (t3); expert 1: 3 (t1); expert 2: 5 (t2); expert 3: 0 (t0), 4 (t2)
  EXPECT_EQ((std::vector<int32_t>(order.begin(), order.begin() + a)),
            (std::vector<int32_t>{1, 2, 6, 3, 5, 0, 4}));
  EXPECT_EQ(counts, (std::vector<int32_t>{3, 1, 1, 2}));
  dispatchRankCounts(ranks.data(), counts.data(), 4, 2);
  EXPECT_EQ(ranks, (std::vector<int32_t>{4, 3}));
  dispatchSlots(slots.data(), order.data(), a, 8);
  EXPECT_EQ(slots, (std::vector<int32_t>{5, 0, 1, 3, 6, 4, 2, -1}));

  EXPECT_EQ(dispatchOrder(order.data(), counts.data(), choice.data(), nullptr, 4, 4, 2), 8);
  EXPECT_EQ(counts, (std::vector<int32_t>{3, 1, 1, 3}));
}

}  // namespace
}  // namespace moescope::engine::cpu
