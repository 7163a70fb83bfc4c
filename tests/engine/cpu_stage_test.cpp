// The CPU stage (the stage pass over the CPU operations): analytic gradients against central finite
// differences (float64 instantiation) for every parameter kind, and MoE capacity dropping in MODEL.md's order
// on a hand-built routing case.
#include "engine/cpu_stage.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "engine/cpu/ops.h"
#include "engine/layout.h"
#include "engine/thread_communicator.h"
#include "tests/engine/engine_test_util.h"

namespace moescope::engine {
namespace {

// A CPU stage's parameters as host arrays (gradient checks).
template <class T>
struct CpuParam {
  std::string name;
  std::span<T> value, grad;
};
template <class T>
std::vector<CpuParam<T>> cpuParameters(const StagePass& stage) {
  std::vector<CpuParam<T>> out;
  T *values = stage.values(), *grads = stage.gradients();
  for (const auto& p : stage.parameters())
    out.push_back({p.sp.spec.name, {values + p.offset, p.n}, {grads + p.offset, p.n}});
  return out;
}

// One rank of a tiny double-precision model: a dense layer, then a MoE layer.
struct SingleRank {
  explicit SingleRank(const Config& c) : config(c), layout(c), data(testing::tinyTokens(c)), world(1) {
    comm = world.communicator(0, {0});
    RankSetup setup;
    setup.config = &config;
    setup.layout = &layout;
    setup.coord = layout.coord(0);
    setup.data = &data;
    setup.world = setup.tp = setup.dp = setup.pp = comm.get();
    stage = makeCpuStage<double>(setup);
    stage->initialize(static_cast<uint64_t>(c.train.seed));
  }
  // The step-0 loss and, in every parameter's grad, its gradient.
  double lossAndGradients() {
    stage->beginStep(0);
    // One stage of one chunk: every micro-batch's forward, then every backward.
    for (int m = 0; m < config.parallel.microbatches; ++m) stage->run({PipelineOp::Kind::Forward, m, 0});
    for (int m = 0; m < config.parallel.microbatches; ++m) stage->run({PipelineOp::Kind::Backward, m, 0});
    return stage->reduceGradients().loss;
  }
  // The central difference (L(v + h) - L(v - h)) / 2h of the loss in one parameter element v.
  double centralDifference(double& v, double h) {
    const double saved = v;
    v = saved + h;
    const double up = lossAndGradients();
    v = saved - h;
    const double down = lossAndGradients();
    v = saved;
    return (up - down) / (2 * h);
  }
  Config config;
  Layout layout;
  TokenData data;
  ThreadWorld world;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<StagePass> stage;
};

Config gradCheckConfig() {
  Config c = testing::tinyConfig();
  c.model.vocab_size = 16;
  c.model.seq_len = 4;
  c.model.d_model = 8;
  c.model.n_heads = 2;
  c.model.n_layers = 2;
  c.model.d_ff = 8;
  c.model.n_experts = 4;
  c.model.top_k = 2;
  c.model.moe_every = 2;  // layer 0 dense, layer 1 MoE
  c.model.aux_loss_coef = 0.1;
  c.train.global_batch = 2;
  c.parallel.microbatches = 2;
  return c;
}

// "h.1.moe.experts.3.c_fc.weight" -> "h.moe.experts.c_fc.weight": one entry per parameter kind.
std::string kindOf(const std::string& name) {
  std::string out;
  size_t i = 0;
  while (i < name.size()) {
    size_t j = name.find('.', i);
    std::string part = name.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (part.empty() || !std::isdigit(static_cast<unsigned char>(part[0])))
      out += (out.empty() ? "" : ".") + part;
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

TEST(CpuStage, GradientsMatchFiniteDifferencesForEveryParameterKind) {
  SingleRank rank(gradCheckConfig());
  rank.lossAndGradients();
  std::map<std::string, std::vector<double>> analytic;
  for (auto& p : cpuParameters<double>(*rank.stage)) analytic[p.name].assign(p.grad.begin(), p.grad.end());

  std::set<std::string> kinds_checked;
  const double h = 1e-5;
  int checked = 0;
  for (auto& p : cpuParameters<double>(*rank.stage)) {
    const std::string kind = kindOf(p.name);
    // Every tensor of a kind the first time it appears, a few elements of each.
    if (kinds_checked.count(kind) && p.name.find("experts.0") == std::string::npos) continue;
    kinds_checked.insert(kind);
    const size_t n = p.value.size();
    for (size_t k = 0; k < 5; ++k) {
      const size_t idx = (k * 7919 + 13) % n;
      const double fd = rank.centralDifference(p.value[idx], h);
      const double an = analytic[p.name][idx];
      // Central differences in double: truncation O(h^2) ~ 1e-10 relative, rounding ~1e-16 / h ~ 1e-11.
      EXPECT_NEAR(an, fd, 1e-7 + 1e-5 * std::abs(fd)) << p.name << "[" << idx << "]";
      ++checked;
    }
  }
  const std::set<std::string> expected = {"wte",
                                          "wpe",
                                          "h.ln_1.weight",
                                          "h.ln_1.bias",
                                          "h.attn.c_attn.weight",
                                          "h.attn.c_attn.bias",
                                          "h.attn.c_proj.weight",
                                          "h.attn.c_proj.bias",
                                          "h.ln_2.weight",
                                          "h.ln_2.bias",
                                          "h.mlp.c_fc.weight",
                                          "h.mlp.c_fc.bias",
                                          "h.mlp.c_proj.weight",
                                          "h.mlp.c_proj.bias",
                                          "h.moe.router.weight",
                                          "h.moe.experts.c_fc.weight",
                                          "h.moe.experts.c_fc.bias",
                                          "h.moe.experts.c_proj.weight",
                                          "h.moe.experts.c_proj.bias",
                                          "ln_f.weight",
                                          "ln_f.bias",
                                          "lm_head.weight"};
  EXPECT_EQ(kinds_checked, expected);
  EXPECT_GT(checked, 100);
}

TEST(CpuStage, GradientsMatchFiniteDifferencesWithCapacityDrops) {
  Config c = gradCheckConfig();
  c.model.capacity_factor = 0.5;  // ceil(0.5 * 4 * 2 / 4) = 1 assignment per expert: most are dropped
  SingleRank rank(c);
  rank.lossAndGradients();
  const double h = 1e-5;
  for (auto& p : cpuParameters<double>(*rank.stage)) {
    if (p.name.find("h.1.") != 0) continue;
    const std::vector<double> an(p.grad.begin(), p.grad.end());
    const size_t idx = p.value.size() / 2;
    EXPECT_NEAR(an[idx], rank.centralDifference(p.value[idx], h), 1e-7 + 1e-5 * std::abs(an[idx])) << p.name;
  }
}

// MODEL.md: an expert accepts at most ceil(cf * N * K / E) assignments per routing group, taken as all
// first choices in token order, then all second choices in token order.
TEST(CpuStage, CapacityDropsFollowChoiceThenTokenOrder) {
  const int n = 4, E = 2, K = 2;
  // cf 0.75: ceil(0.75 * 4 * 2 / 2) = 3 assignments per expert.
  const int capacity = cpu::expertCapacity(0.75, n, K, E);
  ASSERT_EQ(capacity, 3);
  // Probabilities chosen so token 2 prefers expert 1, every other token expert 0.
  const double p[n * E] = {0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.6, 0.4};
  int32_t choice[n * K];
  cpu::routerTopK(choice, p, n, E, K);
  const int32_t expected_choice[n * K] = {0, 1, 0, 1, 1, 0, 0, 1};
  for (int i = 0; i < n * K; ++i) EXPECT_EQ(choice[i], expected_choice[i]) << i;
  uint8_t keep[n * K];
  int32_t load[E];
  const int dropped = cpu::routerCapacity(keep, load, choice, n, E, K, capacity);
  // First choices: t0->0, t1->0, t2->1, t3->0 (expert 0 full at 3). Second choices: t0->1, t1->1
  // (expert 1 full at 3), t2->0 dropped (expert 0 full), t3->1 dropped (expert 1 full).
  const uint8_t expected_keep[n * K] = {1, 1, 1, 1, 1, 0, 1, 0};
  for (int i = 0; i < n * K; ++i) EXPECT_EQ(keep[i], expected_keep[i]) << "assignment " << i;
  EXPECT_EQ(dropped, 2);
  EXPECT_EQ(load[0], 3);
  EXPECT_EQ(load[1], 3);
  // The engine's index slicing sees only the kept assignments, in token order.
  int32_t rows[n];
  ASSERT_EQ(cpu::expertRows(rows, choice, keep, n, K, 0), 3);
  EXPECT_EQ(rows[0], 0);
  EXPECT_EQ(rows[1], 1);
  EXPECT_EQ(rows[2], 3);
  ASSERT_EQ(cpu::expertRows(rows, choice, keep, n, K, 1), 3);
  EXPECT_EQ(rows[0], 0);
  EXPECT_EQ(rows[1], 1);
  EXPECT_EQ(rows[2], 2);
}

// A token whose every pick is dropped adds nothing: its MoE layer is the identity on the residual.
TEST(CpuStage, CapacityDropsChangeTheLoss) {
  Config c = gradCheckConfig();
  const double dropless = SingleRank(c).lossAndGradients();
  c.model.capacity_factor = 0.5;
  const double dropping = SingleRank(c).lossAndGradients();
  EXPECT_NE(dropless, dropping);
  EXPECT_TRUE(std::isfinite(dropping));
}

}  // namespace
}  // namespace moescope::engine
