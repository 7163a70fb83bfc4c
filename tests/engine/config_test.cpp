#include "engine/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

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
  EXPECT_EQ(c.parallel.layout, MoeLayout::PPMoE);
  EXPECT_EQ(c.parallel.schedule, storage::Schedule::OneFOneB);
  EXPECT_EQ(c.parallel.virtual_stages, 1);
  EXPECT_FALSE(c.parallel.split_backward);
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
  EXPECT_EQ(c.parallel.layout, MoeLayout::DPMoE);
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
  // Found by the fuzzer: toml++ asserted on this header in a build with assertions (CMakeLists.txt).
  EXPECT_THROW(parseConfig("[}Odel]\n"), InputError);
}

TEST(Config, OverridesSetOneKey) {
  Config c;
  applyOverride(c, "parallel.tp=2");
  applyOverride(c, "parallel.layout=dpmoe");  // a bare word is a string
  applyOverride(c, "parallel.schedule=\"gpipe\"");
  applyOverride(c, "train.lr=0.5");
  applyOverride(c, "trace.enabled=false");
  applyOverride(c, "parallel.split_backward=true");
  EXPECT_EQ(c.parallel.tp, 2);
  EXPECT_EQ(c.parallel.layout, MoeLayout::DPMoE);
  EXPECT_EQ(c.parallel.schedule, storage::Schedule::GPipe);
  EXPECT_EQ(c.train.lr, 0.5);
  EXPECT_FALSE(c.trace.enabled);
  EXPECT_TRUE(c.parallel.split_backward);
  EXPECT_THROW(applyOverride(c, "parallel.split_backward=yes"), InputError);
  EXPECT_THROW(applyOverride(c, "parallel.tpp=2"), InputError);
  EXPECT_THROW(applyOverride(c, "tp=2"), InputError);
  EXPECT_THROW(applyOverride(c, "parallel.tp=two"), InputError);
}

// Refused, by the parser (a value not among its key's choices) or by validate().
void expectInvalid(const std::string& toml, const std::string& words) {
  try {
    validate(parseConfig(toml));
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
                "parallel.virtual_stages = 0 is below its limit 1");
  EXPECT_NO_THROW(
      validate(parseConfig("[model]\nn_layers = 8\n[parallel]\nschedule = \"interleaved\"\n"
                           "virtual_stages = 2\npp = 2\nmicrobatches = 4\n")));
  EXPECT_NO_THROW(validate(parseConfig("[parallel]\nschedule = \"zb-h1\"\npp = 2\nmicrobatches = 4\n")));
  EXPECT_EQ(pipelineShape(parseConfig("[parallel]\nschedule = \"zb-h1\"\npp = 2\nmicrobatches = 4\n")),
            (PipelineShape{Schedule::ZbH1, 2, 4, 1}));
  // The split backward goes into the shape; a value that is not a bool is refused by the parser.
  EXPECT_EQ(pipelineShape(parseConfig("[parallel]\npp = 2\nmicrobatches = 4\nsplit_backward = true\n")),
            (PipelineShape{Schedule::OneFOneB, 2, 4, 1, true}));
  expectInvalid("[parallel]\nsplit_backward = 1\n", "parallel.split_backward must be true or false");
}

TEST(Config, TomlRoundTrip) {
  Config c;
  c.model.capacity_factor = 1.25;
  c.parallel.layout = MoeLayout::DPMoE;
  c.data.path = "a \"quoted\" path";
  c.trace.enabled = false;
  c.parallel.split_backward = true;
  EXPECT_EQ(parseConfig(toToml(c)), c);
  EXPECT_NE(modelToToml(c.model).find("capacity_factor = 1.25"), std::string::npos);
}

// Every number beyond its key's limit is refused with the limit named; products of limited values are
// checked, so sizes of 2^32 cannot wrap to 0 and divide by it (the SIGFPE of --dry-run before).
TEST(Config, LimitsAreNamedAndProductsChecked) {
  expectInvalid("[parallel]\npp = 4294967296\ndp = 4294967296\nmicrobatches = 4294967296\n",
                "parallel.pp = 4294967296 is above its limit 1024");
  expectInvalid("[model]\nd_ff = 1000000000000\n", "model.d_ff = 1000000000000 is above its limit");
  expectInvalid("[model]\nn_layers = 100000000\n", "model.n_layers = 100000000 is above its limit 4096");
  expectInvalid("[model]\nn_experts = 4294967296\n", "model.n_experts");
  expectInvalid("[model]\nvocab_size = 4294967296\n", "model.vocab_size");
  expectInvalid("[model]\nd_model = 0\n", "model.d_model = 0 is below its limit 1");
  expectInvalid("[train]\nglobal_batch = 4000000000\n", "train.global_batch");
  expectInvalid("[train]\nsteps = -1\n", "train.steps = -1 is below its limit 0");
  expectInvalid("[train]\nlr = nan\n", "train.lr must be a finite number");
  expectInvalid("[train]\nbeta2 = 1.0\n", "train.beta2 must be below 1");
  expectInvalid("[train]\neps = 0.0\n", "train.eps must be above 0");
  expectInvalid(
      "[parallel]\npp = 16\ntp = 16\ndp = 16\n[model]\nn_layers = 16\nn_heads = 16\nd_model = 256\n",
      "world size pp x tp x dp = 16 x 16 x 16 is above its limit 1024");
}

// The schema is one table: every key with its type, default, limits, choices and doc, in file order;
// the defaults it reports are Config{}'s, and every key round-trips through configValue.
TEST(Config, SchemaDescribesEveryKey) {
  const auto keys = configKeys();
  ASSERT_EQ(keys.size(), 31u);
  EXPECT_EQ(keys.front().name, "model.vocab_size");
  EXPECT_EQ(keys.back().name, "trace.enabled");
  const Config defaults;
  for (const ConfigKey& k : keys) {
    EXPECT_FALSE(k.doc.empty()) << k.name;
    EXPECT_EQ(k.doc.find('\n'), std::string_view::npos) << k.name;
    const ConfigValue v = configValue(defaults, k.name);
    switch (k.type) {
      case ConfigType::Int:
        EXPECT_TRUE(std::holds_alternative<int64_t>(v)) << k.name;
        break;
      case ConfigType::Float:
        EXPECT_TRUE(std::holds_alternative<double>(v)) << k.name;
        break;
      case ConfigType::String:
        EXPECT_TRUE(std::holds_alternative<std::string>(v)) << k.name;
        break;
      case ConfigType::Bool:
        EXPECT_TRUE(std::holds_alternative<bool>(v)) << k.name;
        break;
    }
  }
  EXPECT_EQ(std::get<int64_t>(configValue(defaults, "model.d_ff")), 512);
  EXPECT_EQ(std::get<std::string>(configValue(defaults, "parallel.schedule")), "1f1b");
  EXPECT_EQ(std::get<std::string>(configValue(defaults, "train.precision")), "bf16");
  const auto layout =
      std::find_if(keys.begin(), keys.end(), [](const ConfigKey& k) { return k.name == "parallel.layout"; });
  ASSERT_NE(layout, keys.end());
  EXPECT_EQ(std::vector<std::string_view>(layout->choices.begin(), layout->choices.end()),
            (std::vector<std::string_view>{"ppmoe", "dpmoe"}));
  // The schedule's choices are storage::Schedule's, in its order: the four schedules the engine runs.
  const auto schedule = std::find_if(keys.begin(), keys.end(),
                                     [](const ConfigKey& k) { return k.name == "parallel.schedule"; });
  ASSERT_NE(schedule, keys.end());
  ASSERT_EQ(schedule->choices.size(), size_t(storage::kScheduleCount));
  for (size_t i = 0; i < schedule->choices.size(); ++i) {
    EXPECT_EQ(storage::scheduleFromName(schedule->choices[i]), static_cast<storage::Schedule>(i));
    Config c;
    applyOverride(c, "parallel.schedule=" + std::string(schedule->choices[i]));
    EXPECT_EQ(c.parallel.schedule, static_cast<storage::Schedule>(i));
  }
  EXPECT_EQ(std::get<int64_t>(configValue(defaults, "parallel.virtual_stages")), 1);
  EXPECT_THROW(configValue(defaults, "model.width"), InputError);
}

TEST(Config, ParseReportsTheKeysATextSets) {
  std::vector<std::string> set;
  parseConfig("[train]\nsteps = 3\n[model]\nd_ff = 64\n", "x.toml", &set);
  EXPECT_EQ(set, (std::vector<std::string>{"model.d_ff", "train.steps"}));
}

TEST(Config, EnumsAreParsedOnce) {
  expectInvalid("[train]\nprecision = \"fp16\"\n",
                "train.precision must be one of \"bf16\" or \"fp32\", got \"fp16\"");
  Config c;
  EXPECT_THROW(applyOverride(c, "parallel.schedule=zigzag"), InputError);
  applyOverride(c, "train.precision=fp32");
  EXPECT_EQ(c.train.precision, Precision::Fp32);
}

// A config path that is a folder, a device or too large to be a config is bad input, not read.
TEST(Config, LoadRefusesWhatIsNotAConfigFile) {
  auto expectRefused = [](const std::string& path, const std::string& words) {
    try {
      loadConfigFile(path);
      FAIL() << "accepted " << path;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expectRefused("/", "is a folder");
  expectRefused("/dev/zero", "not a regular file");
  expectRefused("/nonexistent/x.toml", "no such file");
  const std::string big = ::testing::TempDir() + "/moescope_config_big.toml";
  {
    std::ofstream out(big);
    out << "# " << std::string(static_cast<size_t>(kMaxConfigBytes), 'x') << "\n";
  }
  expectRefused(big, "limit");
  std::remove(big.c_str());
}

}  // namespace
}  // namespace moescope::engine
