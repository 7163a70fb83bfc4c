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

Config with(int pp, int tp, int dp, int microbatches, const char* layout = "ppmoe",
            const char* schedule = "1f1b") {
  Config c = tinyConfig();
  c.parallel.pp = pp;
  c.parallel.tp = tp;
  c.parallel.dp = dp;
  c.parallel.microbatches = microbatches;
  c.parallel.layout = layout;
  c.parallel.schedule = schedule;
  return c;
}

TEST(TrainerEquivalence, PpmoeTp2) {
  expectEquivalent(with(1, 2, 1, 1));
}
TEST(TrainerEquivalence, PpmoeTp4) {
  expectEquivalent(with(1, 4, 1, 1));
}
TEST(TrainerEquivalence, DpmoeDp2) {
  expectEquivalent(with(1, 1, 2, 1, "dpmoe"));
}
TEST(TrainerEquivalence, DpmoeDp4) {
  expectEquivalent(with(1, 1, 4, 1, "dpmoe"));
}
TEST(TrainerEquivalence, Pp2Gpipe) {
  expectEquivalent(with(2, 1, 1, 4, "ppmoe", "gpipe"));
}
TEST(TrainerEquivalence, Pp4Gpipe) {
  expectEquivalent(with(4, 1, 1, 4, "ppmoe", "gpipe"));
}
TEST(TrainerEquivalence, Pp2OneFOneB) {
  expectEquivalent(with(2, 1, 1, 4, "ppmoe", "1f1b"));
}
TEST(TrainerEquivalence, Pp4OneFOneB) {
  expectEquivalent(with(4, 1, 1, 4, "ppmoe", "1f1b"));
}
TEST(TrainerEquivalence, Pp2Tp2Ppmoe) {
  expectEquivalent(with(2, 2, 1, 2));
}
TEST(TrainerEquivalence, Pp2Dp2Dpmoe) {
  expectEquivalent(with(2, 1, 2, 2, "dpmoe"));
}
TEST(TrainerEquivalence, DenseTp2) {
  Config c = with(1, 2, 1, 1);
  c.model.n_experts = 0;
  expectEquivalent(c);
}
TEST(TrainerEquivalence, PpmoeDp2) {
  expectEquivalent(with(1, 2, 2, 1));
}
// Beyond the acceptance list: all three dimensions at once, and DPMoE with capacity drops.
TEST(TrainerEquivalence, Pp2Tp2Dp2Ppmoe) {
  expectEquivalent(with(2, 2, 2, 2, "ppmoe", "gpipe"));
}
TEST(TrainerEquivalence, Pp2Tp2Dp2Dense) {
  Config c = with(2, 2, 2, 2);
  c.model.n_experts = 0;
  expectEquivalent(c);
}
TEST(TrainerEquivalence, DpmoeDp4WithCapacityDrops) {
  Config c = with(1, 1, 4, 2, "dpmoe");
  c.train.global_batch = 16;
  c.model.capacity_factor = 0.75;
  expectEquivalent(c);
}

}  // namespace
}  // namespace moescope::engine

namespace moescope::engine {
namespace {

// MODEL.md's "loss must visibly fall": a sample config on the built-in corpus loses at least 30% of its
// loss. Its first 12 steps are enough (the full run is in samples/README.md).
TEST(Trainer, LossFallsOnTheSampleCorpusWithASampleConfig) {
  Config c = loadConfigFile(std::string(MOESCOPE_SOURCE_DIR) + "/samples/ppmoe.toml");
  c.train.steps = 12;
  c.trace.enabled = false;
  validate(c);
  const TokenData data = TokenData::load(c);
  TrainOptions options;
  options.config = c;
  options.data = &data;
  const TrainResult r = train(options);
  ASSERT_EQ(r.steps.size(), 12u);
  const double first = r.steps.front().losses.loss, last = r.steps.back().losses.loss;
  EXPECT_LE(last, 0.7 * first) << "loss " << first << " -> " << last;
}

TEST(Trainer, CancelStopsEveryRankBetweenMicrobatches) {
  Config c = testing::tinyConfig();
  c.parallel.pp = 2;
  c.parallel.tp = 2;
  c.parallel.microbatches = 2;
  c.train.steps = 50;
  const TokenData data = testing::tinyTokens(c);
  std::atomic<bool> cancel{false};
  TrainOptions options;
  options.config = c;
  options.data = &data;
  options.cancel = &cancel;
  int steps = 0;
  options.on_step = [&](const StepReport&) {
    if (++steps == 2) cancel.store(true);
  };
  EXPECT_THROW(train(options), Cancelled);
  EXPECT_LE(steps, 3);
}

// A backend whose rank 1 fails in its second step: the error reaches the caller, the other ranks stop.
class FailingBackend final : public Backend {
 public:
  std::string name() const override { return "failing"; }
  std::string devices(const Config&) const override { return "none"; }
  std::unique_ptr<CommWorld> makeWorld(int size) override { return cpu_->makeWorld(size); }
  std::unique_ptr<StageExecutor> makeExecutor(const RankSetup& setup) override {
    struct Executor final : StageExecutor {
      std::unique_ptr<StageExecutor> inner;
      bool fail = false;
      int step = 0;
      void initialize(uint64_t seed) override { inner->initialize(seed); }
      void loadWeights(const ModelWeights& w) override { inner->loadWeights(w); }
      void storeWeights(ModelWeights& w) const override { inner->storeWeights(w); }
      void setRecorder(tracer::TrackRecorder* r) override { inner->setRecorder(r); }
      void beginStep(int s) override {
        step = s;
        inner->beginStep(s);
      }
      void forward(int m) override {
        if (fail && step == 1) throw std::runtime_error("rank 1 ran out of luck");
        inner->forward(m);
      }
      void backward(int m) override { inner->backward(m); }
      StepLosses endStep() override { return inner->endStep(); }
    };
    auto e = std::make_unique<Executor>();
    e->inner = cpu_->makeExecutor(setup);
    e->fail = setup.coord.rank == 1;
    return e;
  }

 private:
  std::unique_ptr<Backend> cpu_ = makeCpuBackend();
};

TEST(Trainer, AFailingRankStopsTheRunWithItsError) {
  Config c = testing::tinyConfig();
  c.parallel.pp = 2;
  c.parallel.microbatches = 2;
  c.train.steps = 5;
  const TokenData data = testing::tinyTokens(c);
  FailingBackend backend;
  TrainOptions options;
  options.config = c;
  options.data = &data;
  options.backend = &backend;
  try {
    train(options);
    FAIL();
  } catch (const Cancelled&) {
    FAIL() << "the rank's own error should win over the others' cancellation";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "rank 1 ran out of luck");
  }
}

TEST(Trainer, CapacityDropsAreLayoutIndependentToo) {
  Config c = testing::tinyConfig();
  c.model.capacity_factor = 1.0;
  c.parallel.tp = 2;
  c.parallel.pp = 2;
  c.parallel.microbatches = 2;
  testing::expectEquivalent(c);
}

}  // namespace
}  // namespace moescope::engine
