#include "engine/routing_stats.h"

#include <gtest/gtest.h>

#include <vector>

namespace moescope::engine {
namespace {

// Four experts' slot offsets over 10 assignments: expert 0 kept slots 0..2, 1 none, 2 slots 3..6,
// 3 slots 7..7; 2 of the 10 were dropped.
TEST(RoutingStats, AGroupsKeptComeFromItsOffsetsAndTheRestIsDropped) {
  RoutingStats stats;
  const std::vector<int32_t> offsets = {0, 3, 3, 7, 8};
  addRouting(stats, {2, 1, 5, 0, 10, 0, {}}, offsets);
  ASSERT_EQ(stats.groups.size(), 1u);
  EXPECT_EQ(stats.groups[0], (storage::MoeRouting{2, 1, 5, 0, 10, 2, {3, 0, 4, 1}}));
  EXPECT_EQ(stats.kept, (std::vector<int64_t>{3, 0, 4, 1}));
  EXPECT_EQ(stats.dropped, 2);
  addRouting(stats, {2, 1, 7, 0, 10, 0, {}}, std::vector<int32_t>{0, 1, 2, 3, 10});
  EXPECT_EQ(stats.kept, (std::vector<int64_t>{4, 1, 5, 8}));
  EXPECT_EQ(stats.dropped, 2);
  EXPECT_EQ(stats.groups[1].layer, 7);
}

}  // namespace
}  // namespace moescope::engine
