// The stage pass: every span and collective name is written once in the engine's sources; the float
// and double CPU stages (one pass over two element types) record the same span sequence per rank for
// every layout; the routing counts it reports add up to every assignment of the step.
#include "engine/stage_pass.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

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
  dpmoe.parallel.layout = "dpmoe";
  dpmoe.parallel.pp = dpmoe.parallel.dp = dpmoe.parallel.microbatches = 2;
  dpmoe.parallel.schedule = "gpipe";
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
                                          "expert",
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
  for (int m = 0; m < 2; ++m) stage->forward(m);
  const RoutingStats stats = stage->routingStats();
  int64_t kept = 0;
  for (int64_t k : stats.kept) kept += k;
  const int64_t tokens = c.train.global_batch * c.model.seq_len, moe_layers = 2;  // layers 1 and 3
  EXPECT_EQ(kept + stats.dropped, tokens * c.model.top_k * moe_layers);
  EXPECT_GT(stats.dropped, 0);
  EXPECT_EQ(stats.kept.size(), static_cast<size_t>(c.model.n_experts));
}

}  // namespace
}  // namespace moescope::engine
