// The stage pass: every span and collective name is written once in the engine's sources; the float
// and double CPU stages (one pass over two element types) record the same span sequence per rank for
// every layout; the routing counts it reports add up to every assignment of the step; a rank's spans
// follow its schedule, chunk and weight pass included; the peak activation memory of each schedule.
#include "engine/stage_pass.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <tuple>

#include "engine/cpu_stage.h"
#include "engine/thread_communicator.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/span_sequence.h"

namespace moescope::engine {
namespace {

namespace fs = std::filesystem;

// The CPU backend with the double stage of the gradient checks.
class DoubleCpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu-double"; }
  std::string devices(const Config&) const override { return "cpu"; }
  std::unique_ptr<CommWorld> makeWorld(int size) override { return std::make_unique<ThreadWorld>(size); }
  std::unique_ptr<StageExecutor> makeExecutor(const RankSetup& setup) override {
    return makeCpuStage<double>(setup);
  }
};

// Every layout and its collectives: PPMoE with tp and pp (capacity drops), DPMoE with dp and pp, the
// dense backbone with tp and dp.
std::vector<std::pair<std::string, Config>> layouts() {
  Config ppmoe = testing::tinyConfig();
  ppmoe.parallel.pp = ppmoe.parallel.tp = ppmoe.parallel.microbatches = 2;
  ppmoe.model.capacity_factor = 1.0;
  Config dpmoe = testing::tinyConfig();
  dpmoe.parallel.layout = MoeLayout::DPMoE;
  dpmoe.parallel.pp = dpmoe.parallel.dp = dpmoe.parallel.microbatches = 2;
  dpmoe.parallel.schedule = storage::Schedule::GPipe;
  Config dense = testing::tinyConfig();
  dense.model.n_experts = 0;
  dense.parallel.tp = dense.parallel.dp = 2;
  return {{"ppmoe pp2 tp2", ppmoe}, {"dpmoe pp2 dp2", dpmoe}, {"dense tp2 dp2", dense}};
}

TEST(StagePass, FloatAndDoubleCpuStagesRecordTheSameSpans) {
  for (auto& [what, config] : layouts()) {
    config.train.steps = 1;
    auto floats = makeCpuBackend();
    DoubleCpuBackend doubles;
    const TokenData data = testing::tinyTokens(config);
    const storage::Trace a = testing::tracedRun(config, data, *floats);
    const storage::Trace b = testing::tracedRun(config, data, doubles);
    // Not vacuous: every rank recorded every micro-batch's forward and backward and the update.
    const auto seq = testing::spanSequences(a);
    ASSERT_EQ(static_cast<int>(seq.size()), config.worldSize()) << what;
    for (const auto& [rank, spans] : seq) {
      std::set<std::pair<storage::Phase, int>> passes;
      for (const auto& s : spans) passes.insert({s.phase, s.microbatch});
      EXPECT_EQ(passes.size(), 2u * static_cast<size_t>(config.parallel.microbatches) + 1)
          << what << " rank " << rank;
    }
    testing::expectSameSpans(a, b, what);
  }
}

// The vocabulary of the timeline is the pass's: each name is a literal once in engine/ (its table in
// stage_pass.cpp), so no backend can record a span of its own.
TEST(StagePass, SpanAndCollectiveNamesAreWrittenOnce) {
  const std::vector<std::string> names = {"embed",
                                          "loss",
                                          "attention",
                                          "router",
                                          "ffn",
                                          "experts",
                                          "gather",
                                          "scatter",
                                          "combine",
                                          "dispatch_layout",
                                          "expert_layout",
                                          "return_layout",
                                          "grad_norm",
                                          "adamw",
                                          "recv_activation",
                                          "send_activation",
                                          "recv_grad",
                                          "send_grad",
                                          "attn_allreduce",
                                          "ffn_allreduce",
                                          "moe_allreduce",
                                          "dispatch_counts",
                                          "dispatch",
                                          "return",
                                          "dispatch_grad",
                                          "return_grad",
                                          "grad_allreduce",
                                          "loss_norm_allreduce"};
  std::map<std::string, std::vector<std::string>> found;  // name -> files holding it as a literal
  const std::regex literal("\"([a-z_]+)\"");
  for (const auto& entry : fs::recursive_directory_iterator(fs::path(MOESCOPE_SOURCE_DIR) / "engine")) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".cpp" && ext != ".h" && ext != ".cu" && ext != ".cuh") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    for (auto it = std::sregex_iterator(s.begin(), s.end(), literal); it != std::sregex_iterator(); ++it) {
      found[(*it)[1].str()].push_back(entry.path().filename().string());
    }
  }
  for (const auto& name : names) {
    EXPECT_EQ(found[name], std::vector<std::string>{"stage_pass.cpp"}) << "\"" << name << "\"";
  }
}

// Kept and dropped assignments add up to every assignment of the stage's MoE layers (issue 22's
// conservation), with capacity drops.
Config scheduled(const char* schedule, int tp, int dp, const char* layout = "ppmoe") {
  Config c = testing::tinyConfig();
  c.model.n_layers = 8;
  c.parallel.pp = 2;
  c.parallel.tp = tp;
  c.parallel.dp = dp;
  applyOverride(c, std::string("parallel.layout=") + layout);
  c.parallel.microbatches = 4;
  applyOverride(c, std::string("parallel.schedule=") + schedule);
  c.parallel.virtual_stages = c.parallel.schedule == Schedule::Interleaved ? 2 : 1;
  c.train.steps = 1;
  return c;
}

// Every rank's spans, waits left out, read as the passes they belong to (runs of one phase, micro-batch
// and chunk) give its stage's schedule pass for pass: interleaved passes carry their chunk, ZB-H1's W
// passes (and a split 1F1B's) are phase backward_weight.
TEST(StagePass, SpansFollowTheScheduleWithChunksAndWeightPasses) {
  Config split = scheduled("1f1b", 2, 1);
  split.parallel.split_backward = true;
  for (const Config& c :
       {scheduled("interleaved", 2, 1), scheduled("zb-h1", 2, 1), scheduled("interleaved", 1, 2, "dpmoe"),
        scheduled("zb-h1", 1, 2, "dpmoe"), split}) {
    SCOPED_TRACE(std::string(storage::scheduleName(c.parallel.schedule)) + " " + c.layoutName() +
                 (c.parallel.split_backward ? " split" : ""));
    validate(c);
    auto cpu = makeCpuBackend();
    const storage::Trace trace = testing::tracedRun(c, testing::tinyTokens(c), *cpu);
    const Layout layout(c);
    const PipelineShape shape = pipelineShape(c);
    for (const auto& [rank, spans] : testing::spanSequences(trace)) {
      std::vector<std::tuple<storage::Phase, int, int>> passes;
      for (const auto& sp : spans) {
        if (sp.phase == storage::Phase::Optimizer) continue;
        const std::tuple<storage::Phase, int, int> pass{sp.phase, sp.microbatch, sp.chunk};
        if (passes.empty() || passes.back() != pass) passes.push_back(pass);
      }
      std::vector<std::tuple<storage::Phase, int, int>> expected;
      for (const PipelineOp& op : stageSchedule(shape, layout.coord(rank).stage)) {
        const storage::Phase phase = op.kind == PipelineOp::Kind::Forward ? storage::Phase::Forward
                                     : op.kind == PipelineOp::Kind::BackwardWeight
                                         ? storage::Phase::BackwardWeight
                                         : storage::Phase::Backward;
        expected.push_back({phase, op.microbatch, shape.virtual_stages > 1 ? op.chunk : -1});
      }
      EXPECT_EQ(passes, expected) << "rank " << rank;
    }
  }
}

// parallel.split_backward changes no number: 1F1B with each backward run as B then W gives every step's
// loss and every weight bit for bit as the plain 1F1B, on the float and the double CPU stage (pp 2 x tp
// 2 PPMoE, 8 layers, 4 micro-batches, 2 steps), and only the split run records weight passes.
TEST(StagePass, SplitBackwardChangesNoNumber) {
  auto floats = makeCpuBackend();
  DoubleCpuBackend doubles;
  for (Backend* backend : {static_cast<Backend*>(floats.get()), static_cast<Backend*>(&doubles)}) {
    SCOPED_TRACE(backend->name());
    Config plain = scheduled("1f1b", 2, 1);
    plain.train.steps = 2;
    Config split = plain;
    split.parallel.split_backward = true;
    const TokenData data = testing::tinyTokens(plain);
    auto run = [&](const Config& c) {
      validate(c);
      TrainOptions options;
      options.config = c;
      options.data = &data;
      options.backend = backend;
      options.gather_weights = true;
      return train(options);
    };
    const TrainResult a = run(plain), b = run(split);
    ASSERT_EQ(a.steps.size(), 2u);
    ASSERT_EQ(b.steps.size(), 2u);
    for (size_t s = 0; s < a.steps.size(); ++s) {
      // loss, cross-entropy, aux loss and gradient norm, compared exactly.
      EXPECT_EQ(a.steps[s].losses, b.steps[s].losses)
          << "step " << s << ": loss " << a.steps[s].losses.loss << " vs " << b.steps[s].losses.loss;
    }
    ASSERT_EQ(a.weights.size(), b.weights.size());
    const ModelWeights init = initialWeights(plain.model, static_cast<uint64_t>(plain.train.seed));
    for (size_t i = 0; i < a.weights.size(); ++i) {
      EXPECT_EQ(a.weights[i].data, b.weights[i].data) << a.weights[i].name;
      EXPECT_NE(a.weights[i].data, init[i].data) << a.weights[i].name << " was not updated";
    }
    auto weightSpans = [&](const Config& c) {
      size_t n = 0;
      for (const auto& [rank, spans] : testing::spanSequences(testing::tracedRun(c, data, *backend)))
        for (const auto& sp : spans) n += sp.phase == storage::Phase::BackwardWeight;
      return n;
    };
    EXPECT_EQ(weightSpans(plain), 0u);
    EXPECT_GT(weightSpans(split), 0u);
  }
}

// Saved activations held at the worst moment, one rank of each stage: GPipe holds all 4 micro-batches,
// 1F1B p - s of them (2 on stage 0, 1 on stage 1), ZB-H1 p = 2 on both stages plus the dy its W passes
// need (which makes it more than 1F1B's in bytes), interleaved its warm-up chunks plus one (stage 0: (2 - 0 -
// 1) x 2 + 2 + 1 = 5 of 2 chunks per micro-batch, stage 1: 3).
TEST(StagePass, PeakActivationMemoryFollowsTheSchedule) {
  std::map<std::string, std::vector<int64_t>> peak;  // per stage
  for (const char* schedule : {"gpipe", "1f1b", "interleaved", "zb-h1"}) {
    Config c = scheduled(schedule, 1, 1);
    c.model.n_experts = 0;  // every layer alike, so a chunk's bytes are half a stage's
    c.parallel.tp = 1;
    validate(c);
    const TokenData data = testing::tinyTokens(c);
    const Layout layout(c);
    ThreadWorld world(2);
    std::vector<int64_t> bytes(2);
    std::vector<std::thread> ranks;
    for (int r = 0; r < 2; ++r) {
      ranks.emplace_back([&, r] {
        auto all = world.communicator(r, {0, 1});
        auto self = world.communicator(r, {r});
        RankSetup setup;
        setup.config = &c;
        setup.layout = &layout;
        setup.coord = layout.coord(r);
        setup.data = &data;
        setup.world = setup.pp = all.get();
        setup.tp = setup.dp = self.get();
        auto stage = makeCpuStage<float>(setup);
        stage->initialize(1);
        stage->beginStep(0);
        for (const PipelineOp& op : stageSchedule(pipelineShape(c), r)) stage->run(op);
        stage->endStep();
        bytes[static_cast<size_t>(r)] = stage->peakActivationBytes();
      });
    }
    for (auto& t : ranks) t.join();
    peak[schedule] = bytes;
  }
  const int64_t mb0 = peak["gpipe"][0] / 4, mb1 = peak["gpipe"][1] / 4;  // one micro-batch, per stage
  ASSERT_GT(mb0, 0);
  EXPECT_EQ(peak["gpipe"][0], 4 * mb0);
  EXPECT_EQ(peak["1f1b"], (std::vector<int64_t>{2 * mb0, mb1}));
  // ZB-H1: stage 0 (F0 F1 B0 W0 ...) holds two micro-batches and one's dy at worst; stage 1 (F0 B0 F1
  // B1 W0 ...) two micro-batches and two micro-batches' dy. A micro-batch's dy is less than its
  // activations.
  EXPECT_GT(peak["zb-h1"][0], 2 * mb0);
  EXPECT_LT(peak["zb-h1"][0], 3 * mb0);
  EXPECT_GT(peak["zb-h1"][1], 2 * mb1);
  EXPECT_LT(peak["zb-h1"][1], 4 * mb1);
  // Interleaved: stage 0's 5 chunks hold its input layer chunk's embedding tokens and 4 half-stages'
  // layers; stage 1's 3 chunks include the head's logits once.
  EXPECT_GT(peak["interleaved"][0], 2 * mb0);
  EXPECT_LT(peak["interleaved"][0], 3 * mb0);
  EXPECT_GT(peak["interleaved"][1], mb1);
  EXPECT_LT(peak["interleaved"][1], 2 * mb1);
}

TEST(StagePass, RoutingCountsEveryAssignmentOnce) {
  Config c = testing::tinyConfig();
  c.model.capacity_factor = 0.5;
  c.parallel.microbatches = 2;
  validate(c);
  const Layout layout(c);
  const TokenData data = testing::tinyTokens(c);
  ThreadWorld world(1);
  auto comm = world.communicator(0, {0});
  RankSetup setup;
  setup.config = &c;
  setup.layout = &layout;
  setup.data = &data;
  setup.world = setup.tp = setup.dp = setup.pp = comm.get();
  auto stage = makeCpuStage<float>(setup);
  stage->initialize(1);
  stage->beginStep(0);
  for (int m = 0; m < 2; ++m) stage->run({PipelineOp::Kind::Forward, m, 0});
  const RoutingStats stats = stage->routingStats();
  int64_t kept = 0;
  for (int64_t k : stats.kept) kept += k;
  const int64_t tokens = c.train.global_batch * c.model.seq_len, moe_layers = 2;  // layers 1 and 3
  EXPECT_EQ(kept + stats.dropped, tokens * c.model.top_k * moe_layers);
  EXPECT_GT(stats.dropped, 0);
  EXPECT_EQ(stats.kept.size(), static_cast<size_t>(c.model.n_experts));
  // Per routing group (micro-batch) and layer, in routing order: kept + dropped = its tokens x top_k.
  ASSERT_EQ(stats.groups.size(), 4u);
  const int64_t groupAssignments = tokens / 2 * c.model.top_k;
  for (size_t i = 0; i < stats.groups.size(); ++i) {
    const storage::MoeRouting& g = stats.groups[i];
    EXPECT_EQ(g.microbatch, static_cast<int32_t>(i / 2));
    EXPECT_EQ(g.layer, i % 2 == 0 ? 1 : 3);
    EXPECT_EQ(g.step, 0);
    EXPECT_EQ(g.assignments, groupAssignments);
    int64_t groupKept = 0;
    for (int64_t k : g.kept) groupKept += k;
    EXPECT_EQ(groupKept + g.dropped, groupAssignments) << "group " << i;
  }
}

}  // namespace
}  // namespace moescope::engine
