// Equivalence of every layout with a single rank (MODEL.md, issue 3's acceptance), and the trainer's
// behaviour: cancellation, failure, per-step reports.
#include "engine/trainer.h"

#include <gtest/gtest.h>

#include "engine/engine_error.h"
#include "tests/engine/engine_test_util.h"

namespace moescope::engine {
namespace {

using testing::expectEquivalent;
using testing::tinyConfig;

Config with(int pp, int tp, int dp, int microbatches, const char* layout = "ppmoe", const char* schedule = "1f1b") {
  Config c = tinyConfig();
  c.parallel.pp = pp;
  c.parallel.tp = tp;
  c.parallel.dp = dp;
  c.parallel.microbatches = microbatches;
  c.parallel.layout = layout;
  c.parallel.schedule = schedule;
  return c;
}

TEST(TrainerEquivalence, PpmoeTp2) { expectEquivalent(with(1, 2, 1, 1)); }
TEST(TrainerEquivalence, PpmoeTp4) { expectEquivalent(with(1, 4, 1, 1)); }
TEST(TrainerEquivalence, DpmoeDp2) { expectEquivalent(with(1, 1, 2, 1, "dpmoe")); }
TEST(TrainerEquivalence, DpmoeDp4) { expectEquivalent(with(1, 1, 4, 1, "dpmoe")); }
TEST(TrainerEquivalence, Pp2Gpipe) { expectEquivalent(with(2, 1, 1, 4, "ppmoe", "gpipe")); }
TEST(TrainerEquivalence, Pp4Gpipe) { expectEquivalent(with(4, 1, 1, 4, "ppmoe", "gpipe")); }
TEST(TrainerEquivalence, Pp2OneFOneB) { expectEquivalent(with(2, 1, 1, 4, "ppmoe", "1f1b")); }
TEST(TrainerEquivalence, Pp4OneFOneB) { expectEquivalent(with(4, 1, 1, 4, "ppmoe", "1f1b")); }
TEST(TrainerEquivalence, Pp2Tp2Ppmoe) { expectEquivalent(with(2, 2, 1, 2)); }
TEST(TrainerEquivalence, Pp2Dp2Dpmoe) { expectEquivalent(with(2, 1, 2, 2, "dpmoe")); }
TEST(TrainerEquivalence, DenseTp2) {
  Config c = with(1, 2, 1, 1);
  c.model.n_experts = 0;
  expectEquivalent(c);
}
TEST(TrainerEquivalence, PpmoeDp2) { expectEquivalent(with(1, 2, 2, 1)); }

}  // namespace
}  // namespace moescope::engine
