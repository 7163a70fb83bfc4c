#include "engine/memory_estimate.h"

#include <gtest/gtest.h>

#include <functional>

#include "engine/engine_error.h"
#include "engine/parameters.h"

namespace moescope::engine {
namespace {

void expectRefusal(const std::function<void()>& check, const std::string& words) {
  try {
    check();
    FAIL() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

// On one rank the estimate holds every parameter of the model (MODEL.md's table), at 16 bytes each
// (value, gradient, two AdamW moments): counted from the config, it agrees with the tensor list.
TEST(MemoryEstimate, OneRankHoldsTheWholeModel) {
  Config c;
  c.model.moe_every = 2;
  double parameters = 0;
  for (const ParamSpec& p : modelParameters(c.model)) parameters += static_cast<double>(p.numel());
  const MemoryNeed need = largestRankNeed(c);
  EXPECT_EQ(need.parameters, parameters);
  EXPECT_EQ(need.state_bytes, 16 * parameters);
  EXPECT_GT(need.activation_bytes, 0);
}

// Pipeline stages split the layers, tensor parallelism the matrices: the largest rank holds less.
TEST(MemoryEstimate, ParallelRanksHoldLess) {
  Config c;
  c.model.n_layers = 8;
  const double one = largestRankNeed(c).totalBytes();
  c.parallel.pp = 4;
  c.parallel.tp = 2;
  EXPECT_LT(largestRankNeed(c).totalBytes(), one / 2);
}

TEST(MemoryEstimate, RefusesWhatCannotFit) {
  Config c;
  c.model.vocab_size = 2'000'000'000;
  c.model.d_model = 1 << 16;
  c.model.n_heads = 1;
  expectRefusal([&] { checkModelSize(c); }, "beyond any machine's");
  Config small;
  EXPECT_NO_THROW(checkModelSize(small));
  expectRefusal([&] { checkHostMemory(small, 1024.0); }, "GiB available");
  EXPECT_NO_THROW(checkHostMemory(small, 1e12));
  EXPECT_TRUE(availableHostMemory().has_value());  // Linux: /proc/meminfo
}

}  // namespace
}  // namespace moescope::engine
