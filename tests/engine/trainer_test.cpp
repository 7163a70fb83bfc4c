// Equivalence of every layout with a single rank (MODEL.md, issue 3's acceptance), and the trainer's
// behaviour: cancellation, failure, per-step reports.
#include "engine/trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>

#include "engine/checkpoint.h"
#include "engine/engine_error.h"
#include "storage/query.h"
#include "tests/common/temp_dir.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/span_sequence.h"

namespace moescope::engine {
namespace {

using testing::expectEquivalent;
using testing::tinyConfig;

Config with(int pp, int tp, int dp, int microbatches, MoeLayout layout = MoeLayout::PPMoE,
            storage::Schedule schedule = storage::Schedule::OneFOneB) {
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
  expectEquivalent(with(1, 1, 2, 1, MoeLayout::DPMoE));
}
TEST(TrainerEquivalence, DpmoeDp4) {
  expectEquivalent(with(1, 1, 4, 1, MoeLayout::DPMoE));
}
TEST(TrainerEquivalence, Pp2Gpipe) {
  expectEquivalent(with(2, 1, 1, 4, MoeLayout::PPMoE, storage::Schedule::GPipe));
}
TEST(TrainerEquivalence, Pp4Gpipe) {
  expectEquivalent(with(4, 1, 1, 4, MoeLayout::PPMoE, storage::Schedule::GPipe));
}
TEST(TrainerEquivalence, Pp2OneFOneB) {
  expectEquivalent(with(2, 1, 1, 4, MoeLayout::PPMoE, storage::Schedule::OneFOneB));
}
TEST(TrainerEquivalence, Pp4OneFOneB) {
  expectEquivalent(with(4, 1, 1, 4, MoeLayout::PPMoE, storage::Schedule::OneFOneB));
}
TEST(TrainerEquivalence, Pp2Tp2Ppmoe) {
  expectEquivalent(with(2, 2, 1, 2));
}
TEST(TrainerEquivalence, Pp2Dp2Dpmoe) {
  expectEquivalent(with(2, 1, 2, 2, MoeLayout::DPMoE));
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
  expectEquivalent(with(2, 2, 2, 2, MoeLayout::PPMoE, storage::Schedule::GPipe));
}
TEST(TrainerEquivalence, Pp2Tp2Dp2Dense) {
  Config c = with(2, 2, 2, 2);
  c.model.n_experts = 0;
  expectEquivalent(c);
}
TEST(TrainerEquivalence, DpmoeDp4WithCapacityDrops) {
  Config c = with(1, 1, 4, 2, MoeLayout::DPMoE);
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
      void run(const PipelineOp& pass) override {
        if (fail && step == 1 && pass.kind == PipelineOp::Kind::Forward)
          throw std::runtime_error("rank 1 ran out of luck");
        inner->run(pass);
      }
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

// Each step's report carries the backend's peak memory as it stands after the step (the CPU counts none).
// Each rank's own peak is a million bytes per rank number and a step's worth more each time it is asked.
class CountingBackend final : public Backend {
 public:
  std::string name() const override { return "counting"; }
  std::string devices(const Config&) const override { return "none"; }
  std::unique_ptr<CommWorld> makeWorld(int size) override { return cpu_->makeWorld(size); }
  std::unique_ptr<StageExecutor> makeExecutor(const RankSetup& setup) override {
    return cpu_->makeExecutor(setup);
  }
  int64_t peakMemoryBytes() const override { return 1000 * ++asked_; }
  int64_t rankPeakMemoryBytes(const RankCoord& coord) const override {
    std::lock_guard lock(mutex_);
    return 1'000'000 * (coord.rank + 1) + 1000 * ++rank_asked_[coord.rank];
  }

 private:
  std::unique_ptr<Backend> cpu_ = makeCpuBackend();
  mutable int64_t asked_ = 0;
  mutable std::mutex mutex_;  // ranks ask from their own threads
  mutable std::map<int, int64_t> rank_asked_;
};

TEST(Trainer, EachStepReportsThePeakMemoryAfterIt) {
  Config c = testing::tinyConfig();
  c.train.steps = 3;
  const TokenData data = testing::tinyTokens(c);
  CountingBackend counting;
  TrainOptions options;
  options.config = c;
  options.data = &data;
  options.backend = &counting;
  const TrainResult r = train(options);
  ASSERT_EQ(r.steps.size(), 3u);
  for (size_t s = 0; s < r.steps.size(); ++s)
    EXPECT_EQ(r.steps[s].peak_memory_bytes, 1000 * (int64_t(s) + 1));
  options.backend = nullptr;  // the CPU backend
  for (const StepReport& step : train(options).steps) EXPECT_EQ(step.peak_memory_bytes, 0);
}

// A traced run: each step metric holds the step's peak, each rank has a counter track of its own
// device's peak with a sample per step. A CPU run writes neither: the step metric's peak is NULL in the
// file and no rank has the counter.
TEST(Trainer, TheRunFileHoldsEachStepsPeakAndEachRanksDevicePeak) {
  Config c = testing::tinyConfig();
  c.parallel.pp = 2;
  c.parallel.microbatches = 2;
  c.train.steps = 2;
  validate(c);
  const TokenData data = testing::tinyTokens(c);
  moescope::testing::TempDir dir;
  CountingBackend counting;
  const auto counted = dir.path() / "counted.moescope";
  testing::trainInto(c, data, counting, counted);
  const storage::Trace t = storage::RunReader::open(counted)->load();
  ASSERT_EQ(t.steps.size(), 2u);
  EXPECT_EQ(t.steps[0].peak_memory_bytes, 1000);
  EXPECT_EQ(t.steps[1].peak_memory_bytes, 2000);
  std::map<int32_t, std::vector<double>> perRank;
  for (const storage::CounterSample& sample : t.counters) {
    const storage::TrackInfo& track = t.tracks[static_cast<size_t>(sample.track)];
    if (track.name == storage::kPeakDeviceMemoryCounter) perRank[track.rank].push_back(sample.value);
  }
  EXPECT_EQ(perRank, (std::map<int32_t, std::vector<double>>{{0, {1'001'000, 1'002'000}},
                                                             {1, {2'001'000, 2'002'000}}}));

  auto cpu = makeCpuBackend();
  const auto plain = dir.path() / "cpu.moescope";
  testing::trainInto(c, data, *cpu, plain);
  const storage::Trace p = storage::RunReader::open(plain)->load();
  ASSERT_EQ(p.steps.size(), 2u);
  for (const storage::TrackInfo& track : p.tracks) EXPECT_NE(track.name, storage::kPeakDeviceMemoryCounter);
  const storage::QueryResult nulls =
      storage::runQuery(plain, "SELECT count(*) FROM step_metric WHERE peak_memory_bytes IS NULL");
  EXPECT_EQ(nulls.rows, (std::vector<std::vector<std::string>>{{"2"}}));
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

namespace moescope::engine {
namespace {

// MODEL.md: schedules never change the math. Each new schedule against GPipe on the same config (pp,
// tp or dp, layout; 8 layers, 4 micro-batches, 3 steps): every step's loss to 1e-6 relative, and the
// checkpoints written after the last step to 1e-5 relative (each tensor's largest difference over its
// largest value). Interleaved places the layers apart (2 chunks per stage) and walks them in Megatron's
// order; ZB-H1 splits every backward into B and W passes.
struct ScheduleCase {
  const char* schedule;
  int pp, tp, dp;
  const char* layout;  // "ppmoe", "dpmoe" or "dense"
};

std::string caseName(const ::testing::TestParamInfo<ScheduleCase>& info) {
  const ScheduleCase& c = info.param;
  std::string s = std::string(c.schedule) + "_pp" + std::to_string(c.pp) + "_tp" + std::to_string(c.tp) +
                  "_dp" + std::to_string(c.dp) + "_" + c.layout;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

Config scheduleConfig(const ScheduleCase& k, const char* schedule) {
  Config c = testing::tinyConfig();
  c.model.n_layers = 8;
  c.train.steps = 3;
  c.parallel.pp = k.pp;
  c.parallel.tp = k.tp;
  c.parallel.dp = k.dp;
  c.parallel.microbatches = 4;
  c.parallel.layout = std::string(k.layout) == "dpmoe" ? MoeLayout::DPMoE : MoeLayout::PPMoE;
  if (std::string(k.layout) == "dense") c.model.n_experts = 0;
  applyOverride(c, std::string("parallel.schedule=") + schedule);
  if (c.parallel.schedule == Schedule::Interleaved) c.parallel.virtual_stages = 2;
  return c;
}

ModelWeights trainAndCheckpoint(const Config& c, const TokenData& data, const std::filesystem::path& file,
                                std::vector<double>& losses) {
  const TrainResult r = testing::runLayout(c, data);
  for (const StepReport& s : r.steps) losses.push_back(s.losses.loss);
  {
    std::ofstream out(file, std::ios::binary);
    writeCheckpoint(out, c.model, r.weights);
  }
  return loadCheckpoint(file.string(), c.model);
}

class TrainerSchedules : public ::testing::TestWithParam<ScheduleCase> {};

TEST_P(TrainerSchedules, LossesAndCheckpointsMatchGpipe) {
  const ScheduleCase k = GetParam();
  const Config gpipe = scheduleConfig(k, "gpipe"), other = scheduleConfig(k, k.schedule);
  const TokenData data = testing::tinyTokens(gpipe);
  const moescope::testing::TempDir dir;
  std::vector<double> lg, lo;
  const ModelWeights wg = trainAndCheckpoint(gpipe, data, dir.file("gpipe.safetensors"), lg);
  const ModelWeights wo = trainAndCheckpoint(other, data, dir.file("other.safetensors"), lo);
  ASSERT_EQ(lg.size(), 3u);
  ASSERT_EQ(lo.size(), 3u);
  for (size_t s = 0; s < lg.size(); ++s)
    EXPECT_LE(std::abs(lo[s] - lg[s]), 1e-6 * std::abs(lg[s]))
        << "step " << s << ": " << lo[s] << " vs " << lg[s];
  ASSERT_EQ(wg.size(), wo.size());
  const ModelWeights init = initialWeights(gpipe.model, static_cast<uint64_t>(gpipe.train.seed));
  for (size_t i = 0; i < wg.size(); ++i) {
    ASSERT_EQ(wg[i].name, wo[i].name);
    double largest = 0, diff = 0, moved = 0;
    for (size_t j = 0; j < wg[i].data.size(); ++j) {
      largest = std::max(largest, std::abs(static_cast<double>(wg[i].data[j])));
      diff = std::max(diff, std::abs(static_cast<double>(wo[i].data[j]) - wg[i].data[j]));
      moved = std::max(moved, std::abs(static_cast<double>(wg[i].data[j]) - init[i].data[j]));
    }
    EXPECT_GT(moved, 0.0) << wg[i].name << " was not updated";
    EXPECT_LE(diff, 1e-5 * largest) << wg[i].name;
  }
}

std::vector<ScheduleCase> scheduleCases() {
  std::vector<ScheduleCase> cases;
  for (const char* schedule : {"interleaved", "zb-h1"}) {
    for (int pp : {2, 4}) {
      for (const char* layout : {"ppmoe", "dense"}) {
        cases.push_back({schedule, pp, 2, 1, layout});
        cases.push_back({schedule, pp, 1, 2, layout});
      }
      cases.push_back({schedule, pp, 1, 2, "dpmoe"});  // dpmoe needs tp 1
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(EveryLayout, TrainerSchedules, ::testing::ValuesIn(scheduleCases()), caseName);

}  // namespace
}  // namespace moescope::engine
