#include "engine/config.h"

#include <gtest/gtest.h>

#include "engine/engine_error.h"

namespace moescope::engine {
namespace {

TEST(Config, EmptyTextGivesModelMdDefaults) {
  const Config c = parseConfig("");
  EXPECT_EQ(c, Config{});
  EXPECT_EQ(c.model.vocab_size, 256);
  EXPECT_EQ(c.model.seq_len, 64);
  EXPECT_EQ(c.model.d_model, 128);
  EXPECT_EQ(c.model.n_heads, 4);
  EXPECT_EQ(c.model.n_layers, 4);
  EXPECT_EQ(c.model.d_ff, 512);
  EXPECT_EQ(c.model.n_experts, 8);
  EXPECT_EQ(c.model.top_k, 2);
  EXPECT_EQ(c.model.capacity_factor, 0.0);
  EXPECT_EQ(c.model.moe_every, 1);
  EXPECT_EQ(c.model.aux_loss_coef, 0.01);
  EXPECT_EQ(c.parallel.layout, "ppmoe");
  EXPECT_EQ(c.parallel.schedule, "1f1b");
  EXPECT_EQ(c.parallel.virtual_stages, 1);
  EXPECT_EQ(c.train.global_batch, 8);
  EXPECT_EQ(c.train.steps, 10);
  EXPECT_EQ(c.train.lr, 3e-4);
  EXPECT_EQ(c.train.beta2, 0.95);
  EXPECT_EQ(c.train.eps, 1e-8);
  EXPECT_EQ(c.train.weight_decay, 0.1);
  EXPECT_EQ(c.train.grad_clip, 1.0);
  EXPECT_EQ(c.train.seed, 1234);
  EXPECT_EQ(c.data.path, "");
  EXPECT_TRUE(c.trace.enabled);
  EXPECT_NO_THROW(validate(c));
}

TEST(Config, ParsesEverySection) {
  const Config c = parseConfig(R"(
[model]
d_model = 64
capacity_factor = 1   # an integer where a float is expected is fine
[parallel]
layout = "dpmoe"
dp = 2
[train]
lr = 1e-3
[data]
path = "random"
[trace]
enabled = false
)");
  EXPECT_EQ(c.model.d_model, 64);
  EXPECT_EQ(c.model.capacity_factor, 1.0);
  EXPECT_EQ(c.parallel.layout, "dpmoe");
  EXPECT_EQ(c.parallel.dp, 2);
  EXPECT_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.data.path, "random");
  EXPECT_FALSE(c.trace.enabled);
}

TEST(Config, UnknownKeyOrSectionIsAnErrorNamingIt) {
  try {
    parseConfig("[model]\nd_modle = 3\n", "x.toml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("model.d_modle"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parseConfig("[optimizer]\nlr = 1\n"), InputError);
  EXPECT_THROW(parseConfig("seed = 1\n"), InputError);
}

TEST(Config, WrongTypesAndSyntaxAreErrors) {
  EXPECT_THROW(parseConfig("[model]\nd_model = \"big\"\n"), InputError);
  EXPECT_THROW(parseConfig("[model]\nd_model = 1.5\n"), InputError);
  EXPECT_THROW(parseConfig("[trace]\nenabled = 1\n"), InputError);
  EXPECT_THROW(parseConfig("[model\n"), InputError);
}

TEST(Config, OverridesSetOneKey) {
  Config c;
  applyOverride(c, "parallel.tp=2");
  applyOverride(c, "parallel.layout=dpmoe");  // a bare word is a string
  applyOverride(c, "parallel.schedule=\"gpipe\"");
  applyOverride(c, "train.lr=0.5");
  applyOverride(c, "trace.enabled=false");
  EXPECT_EQ(c.parallel.tp, 2);
  EXPECT_EQ(c.parallel.layout, "dpmoe");
  EXPECT_EQ(c.parallel.schedule, "gpipe");
  EXPECT_EQ(c.train.lr, 0.5);
  EXPECT_FALSE(c.trace.enabled);
  EXPECT_THROW(applyOverride(c, "parallel.tpp=2"), InputError);
  EXPECT_THROW(applyOverride(c, "tp=2"), InputError);
  EXPECT_THROW(applyOverride(c, "parallel.tp=two"), InputError);
}

void expectInvalid(const std::string& toml, const std::string& words) {
  const Config c = parseConfig(toml);
  try {
    validate(c);
    FAIL() << "accepted: " << toml;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(Config, LayoutRules) {
  expectInvalid("[model]\nn_experts = 6\n[parallel]\ntp = 4\n", "n_experts");
  expectInvalid("[parallel]\nlayout = \"dpmoe\"\ntp = 2\n", "dpmoe needs tp = 1");
  expectInvalid("[model]\nn_experts = 6\n[parallel]\nlayout = \"dpmoe\"\ndp = 4\n[train]\nglobal_batch = 8\n",
                "n_experts");
  expectInvalid("[train]\nglobal_batch = 6\n[parallel]\ndp = 4\n", "global_batch");
  expectInvalid("[parallel]\nmicrobatches = 3\n", "global_batch");
  expectInvalid("[parallel]\ntp = 3\n", "n_heads");
  expectInvalid("[model]\nn_heads = 2\nd_model = 128\nd_ff = 6\n[parallel]\ntp = 4\n", "n_heads");
  expectInvalid("[model]\nd_ff = 6\n[parallel]\ntp = 4\n", "d_ff");
  expectInvalid("[parallel]\npp = 5\n", "n_layers");
  expectInvalid("[model]\nd_model = 130\n", "n_heads");
  expectInvalid("[model]\ntop_k = 9\n", "top_k");
  expectInvalid("[parallel]\nschedule = \"zigzag\"\n", "schedule");
  expectInvalid("[parallel]\nlayout = \"ep\"\n", "layout");
  // Dense models ignore the layout's expert rules.
  EXPECT_NO_THROW(validate(parseConfig("[model]\nn_experts = 0\n[parallel]\nlayout = \"dpmoe\"\ntp = 2\n")));
}

// MODEL.md's schedule rules, all from scheduleProblem (engine/schedule.h), in one line each.
TEST(Config, ScheduleRules) {
  expectInvalid("[parallel]\nvirtual_stages = 2\npp = 2\nmicrobatches = 2\n",
                "parallel.virtual_stages = 2 needs schedule \"interleaved\", got \"1f1b\"");
  expectInvalid("[parallel]\nschedule = \"zb-h1\"\nvirtual_stages = 2\n", "needs schedule \"interleaved\"");
  expectInvalid(
      "[model]\nn_layers = 6\n[parallel]\nschedule = \"interleaved\"\nvirtual_stages = 2\npp = 2\n"
      "microbatches = 2\n",
      "model.n_layers (6) is not divisible into pp x virtual_stages (2 x 2) chunks");
  expectInvalid(
      "[model]\nn_layers = 8\n[parallel]\nschedule = \"interleaved\"\nvirtual_stages = 2\npp = 2\n"
      "microbatches = 1\n",
      "parallel.microbatches (1) is not a multiple of pp (2)");
  expectInvalid("[parallel]\nschedule = \"interleaved\"\nvirtual_stages = 0\n",
                "virtual_stages must be >= 1");
  EXPECT_NO_THROW(
      validate(parseConfig("[model]\nn_layers = 8\n[parallel]\nschedule = \"interleaved\"\n"
                           "virtual_stages = 2\npp = 2\nmicrobatches = 4\n")));
  EXPECT_NO_THROW(validate(parseConfig("[parallel]\nschedule = \"zb-h1\"\npp = 2\nmicrobatches = 4\n")));
  EXPECT_EQ(pipelineShape(parseConfig("[parallel]\nschedule = \"zb-h1\"\npp = 2\nmicrobatches = 4\n")),
            (PipelineShape{Schedule::ZbH1, 2, 4, 1}));
}

TEST(Config, TomlRoundTrip) {
  Config c;
  c.model.capacity_factor = 1.25;
  c.parallel.layout = "dpmoe";
  c.data.path = "a \"quoted\" path";
  c.trace.enabled = false;
  EXPECT_EQ(parseConfig(toToml(c)), c);
  EXPECT_NE(modelToToml(c.model).find("capacity_factor = 1.25"), std::string::npos);
}

}  // namespace
}  // namespace moescope::engine
