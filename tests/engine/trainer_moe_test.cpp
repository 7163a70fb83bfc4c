// The MoE routing a traced run writes (the run file's routing tables), read back and analysed: every
// assignment kept or dropped once per layer and micro-batch; the dropped share the engine counted; and
// an unbalanced router's hot expert, with the waiting it causes at PPMoE's all-reduce attributed to the
// rank that computes it.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "engine/trainer.h"
#include "storage/analysis_moe.h"
#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/hot_expert.h"
#include "tracer/tracer.h"

namespace moescope::engine {
namespace {

namespace fs = std::filesystem;

storage::Trace tracedRun(Config c, const fs::path& path, const ModelWeights* init = nullptr) {
  c.trace.enabled = true;
  validate(c);
  const TokenData data = testing::tinyTokens(c);
  auto backend = makeCpuBackend();
  auto tracer = tracer::Tracer::open(path, makeRunInfo(c, *backend, "moe"));
  TrainOptions options;
  options.config = c;
  options.data = &data;
  options.tracer = tracer.get();
  options.init = init;
  train(options);
  tracer->finish(storage::RunStatus::Complete, "");
  tracer.reset();
  return storage::RunReader::open(path)->load();
}

int64_t moeLayers(const Config& c) {
  return c.model.n_layers / c.model.moe_every;
}

// Every (step, micro-batch, MoE layer, replica) has one row whose kept and dropped add up to its
// tokens x top_k, for PPMoE over pp 2 x tp 2 and DPMoE over dp 2, with a capacity that drops.
TEST(TrainerMoe, KeptPlusDroppedIsTokensTimesTopKPerLayerAndMicrobatch) {
  moescope::testing::TempDir dir;
  for (const MoeLayout layout : {MoeLayout::PPMoE, MoeLayout::DPMoE}) {
    Config c = testing::tinyConfig();
    c.model.capacity_factor = 0.75;
    c.parallel.layout = layout;
    c.parallel.microbatches = 2;
    if (c.parallel.layout == MoeLayout::PPMoE) {
      c.parallel.pp = 2;
      c.parallel.tp = 2;
    } else {
      c.parallel.dp = 2;
    }
    const storage::Trace t = tracedRun(c, dir.path() / (std::string(moeLayoutName(layout)) + ".moescope"));
    const int64_t perGroup =
        c.train.global_batch / (c.parallel.dp * c.parallel.microbatches) * c.model.seq_len * c.model.top_k;
    ASSERT_EQ(static_cast<int64_t>(t.routing.size()),
              c.train.steps * c.parallel.microbatches * moeLayers(c) * c.parallel.dp)
        << moeLayoutName(layout);
    int64_t dropped = 0;
    for (const storage::MoeRouting& g : t.routing) {
      EXPECT_EQ(g.assignments, perGroup) << moeLayoutName(layout);
      ASSERT_EQ(g.kept.size(), static_cast<size_t>(c.model.n_experts));
      int64_t kept = 0;
      for (int64_t k : g.kept) kept += k;
      EXPECT_EQ(kept + g.dropped, g.assignments)
          << moeLayoutName(layout) << " step " << g.step << " mb " << g.microbatch << " layer " << g.layer;
      dropped += g.dropped;
    }
    EXPECT_GT(dropped, 0) << moeLayoutName(layout) << ": capacity factor 0.75 drops assignments";
  }
}

// The dropped share of `stats` is the engine's own count: the "dropped assignments" counters it
// recorded per step and rank, over every assignment routed; and no expert kept more than its capacity.
TEST(TrainerMoe, DroppedShareIsWhatTheEngineCounted) {
  moescope::testing::TempDir dir;
  Config c = testing::tinyConfig();
  c.model.capacity_factor = 0.5;
  c.parallel.microbatches = 2;
  const storage::Trace t = tracedRun(c, dir.path() / "drop.moescope");
  double counted = 0;
  for (const storage::TrackInfo& track : t.tracks) {
    if (track.kind != storage::TrackKind::Counter || track.name != "dropped assignments") continue;
    for (const storage::CounterSample& s : t.counters)
      if (s.track == track.id) counted += s.value;
  }
  const int64_t routed = c.train.steps * c.tokensPerStep() * c.model.top_k * moeLayers(c);
  const storage::MoeStats moe = storage::analyzeMoe(t);
  EXPECT_GT(counted, 0);
  EXPECT_EQ(moe.assignments, routed);
  EXPECT_EQ(moe.dropped, static_cast<int64_t>(counted));
  EXPECT_DOUBLE_EQ(moe.dropped_share, counted / static_cast<double>(routed));
  const int64_t N = c.train.global_batch / c.parallel.microbatches * c.model.seq_len;
  const int64_t capacity = (N * c.model.top_k * 1 + 2 * c.model.n_experts - 1) / (2 * c.model.n_experts);
  for (const storage::MoeRouting& g : t.routing)
    for (int64_t k : g.kept) EXPECT_LE(k, capacity);
}

// top_k 1 and every token's first choice expert 3: a layer's load is max / mean = E = 4 (a balanced
// router's is near 1). Expert 3 is on rank 1: under PPMoE tp 2 on tp rank 1 (experts 2 and 3), under
// DPMoE dp 2 on dp rank 1. That rank computes every token while rank 0 computes none, so rank 0 waits
// where the layer's ranks meet after the experts (PPMoE: the all-reduce; DPMoE: the all-to-all that
// returns the outputs, and its backward twin), and the waiting is rank 1's, caused by imbalance.
TEST(TrainerMoe, UnbalancedRoutersHotExpertAndItsRankCausesTheWait) {
  moescope::testing::TempDir dir;
  for (const MoeLayout layout : {MoeLayout::PPMoE, MoeLayout::DPMoE}) {
    SCOPED_TRACE(std::string(moeLayoutName(layout)));
    Config c = testing::tinyConfig();
    c.model.seq_len = 64;
    c.model.d_model = 64;
    c.model.d_ff = 512;
    c.model.n_layers = 2;
    c.model.top_k = 1;
    c.model.aux_loss_coef = 0;
    c.parallel.layout = layout;
    (c.parallel.layout == MoeLayout::PPMoE ? c.parallel.tp : c.parallel.dp) = 2;
    c.parallel.microbatches = 2;
    c.train.lr = 1e-4;
    const ModelWeights hot = testing::hotExpertWeights(c.model, 7, 3);
    const storage::MoeStats unbalanced = storage::analyzeMoe(
        tracedRun(c, dir.path() / (std::string(moeLayoutName(layout)) + "-hot.moescope"), &hot));
    const storage::MoeStats balanced = storage::analyzeMoe(
        tracedRun(c, dir.path() / (std::string(moeLayoutName(layout)) + "-even.moescope")));
    ASSERT_EQ(unbalanced.layers.size(), 1u);
    ASSERT_EQ(balanced.layers.size(), 1u);
    const storage::MoeLayerStats& l = unbalanced.layers[0];
    EXPECT_EQ(l.layer, 1);
    EXPECT_EQ(l.hot_expert, 3);
    EXPECT_DOUBLE_EQ(l.hot_share, 1.0);
    EXPECT_DOUBLE_EQ(l.imbalance, 4.0);
    EXPECT_LT(balanced.layers[0].imbalance, 2.0);
    EXPECT_EQ(l.hot_rank, 1);
    // Forward and backward of 2 micro-batches in 2 steps.
    EXPECT_EQ(l.collectives, 8);
    EXPECT_EQ(l.waited_for_rank, 1);
    ASSERT_GT(l.wait_ns, 0);
    int64_t causedByHot = 0;
    for (const storage::MoeRankLoad& r : unbalanced.ranks) {
      if (r.rank == 1) {
        causedByHot = r.caused_ns;
        EXPECT_EQ(r.tokens, c.train.steps * c.tokensPerStep());
      } else {
        EXPECT_EQ(r.tokens, 0);
      }
    }
    // Rank 1 computes 256 token rows per micro-batch and pass (512 under DPMoE) where rank 0 computes
    // none; another program taking the core at the wrong moment may make rank 0 late once, never often.
    EXPECT_GT(static_cast<double>(causedByHot), 0.8 * static_cast<double>(l.wait_ns));
    EXPECT_GT(static_cast<double>(l.imbalance_wait_ns), 0.8 * static_cast<double>(l.wait_ns));
  }
}

}  // namespace
}  // namespace moescope::engine
