#include "storage/intervals.h"

#include <gtest/gtest.h>

namespace moescope::storage {
namespace {

TEST(Intervals, MergeJoinsOverlappingAndTouchingAndDropsEmpty) {
  EXPECT_EQ(mergeIntervals({{5, 8}, {0, 2}, {1, 3}, {3, 4}, {6, 7}, {9, 9}, {10, 8}}),
            (std::vector<Interval>{{0, 4}, {5, 8}}));
  EXPECT_TRUE(mergeIntervals({}).empty());
}

TEST(Intervals, TotalLengthOfMerged) {
  const auto m = mergeIntervals({{0, 10}, {5, 15}, {20, 25}});
  EXPECT_EQ(totalLength(m), 20);
}

TEST(Intervals, Intersection) {
  const auto a = mergeIntervals({{0, 10}, {20, 30}});
  const auto b = mergeIntervals({{5, 25}, {28, 40}});
  EXPECT_EQ(intersectIntervals(a, b), (std::vector<Interval>{{5, 10}, {20, 25}, {28, 30}}));
  EXPECT_EQ(intersectionLength(a, b), 12);
  EXPECT_EQ(intersectionLength(a, {}), 0);
}

}  // namespace
}  // namespace moescope::storage
