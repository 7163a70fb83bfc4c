#include <gtest/gtest.h>

#include <vector>

#include "engine/cpu/ops.h"

namespace moescope::engine::cpu {
namespace {

TEST(Elementwise, AddInPlaceAndScaleInPlace) {
  std::vector<float> y = {1, 2, 3};
  const std::vector<float> x = {0.5f, -2, 10};
  addInPlace(y.data(), x.data(), y.size());
  EXPECT_EQ(y, (std::vector<float>{1.5f, 0, 13}));
  scaleInPlace(y.data(), y.size(), 2.0f);
  EXPECT_EQ(y, (std::vector<float>{3, 0, 26}));
}

}  // namespace
}  // namespace moescope::engine::cpu
