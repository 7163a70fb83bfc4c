// moescope-cli config --json: the contract the GUI's run dialog reads (version 1): every key of the
// schema with type, default, limits, choices and doc, and the sample presets with every key they set.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "engine/config.h"
#include "tests/app/cli_test_util.h"

namespace moescope::app {
namespace {

using testing::CliFolder;

TEST(CliConfig, JsonHoldsEveryKeyWithItsDefaultAndLimits) {
  CliFolder folder;
  const auto r = folder.run("config --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["version"], 1);
  ASSERT_EQ(j["keys"].size(), engine::configKeys().size());
  std::set<std::string> types;
  for (const auto& k : j["keys"]) {
    for (const char* field : {"key", "type", "default", "doc"}) ASSERT_TRUE(k.contains(field)) << k.dump();
    types.insert(k["type"].get<std::string>());
  }
  EXPECT_EQ(types, (std::set<std::string>{"int", "float", "string", "bool"}));
  const auto key = [&](const std::string& name) {
    for (const auto& k : j["keys"]) {
      if (k["key"] == name) return k;
    }
    ADD_FAILURE() << "no key " << name;
    return nlohmann::json();
  };
  EXPECT_EQ(key("model.vocab_size")["default"], 256);
  EXPECT_EQ(key("model.vocab_size")["min"], 1);
  EXPECT_EQ(key("parallel.pp")["max"], 1024);
  EXPECT_EQ(key("train.lr")["default"], 3e-4);
  EXPECT_EQ(key("trace.enabled")["default"], true);
  EXPECT_EQ(key("parallel.schedule")["choices"], (nlohmann::json{"gpipe", "1f1b", "interleaved", "zb-h1"}));
  EXPECT_EQ(key("parallel.virtual_stages")["default"], 1);
  EXPECT_EQ(key("parallel.virtual_stages")["min"], 1);
  EXPECT_FALSE(key("data.path").contains("choices"));
}

// The presets are the samples' TOML files with every key each sets, typed as in the schema; the
// folder is chosen with --samples (else MOESCOPE_SAMPLES, beside the binary, the source tree).
TEST(CliConfig, PresetsAreTheSamplesWithTheKeysTheySet) {
  CliFolder folder;
  folder.write("small.toml", "[model]\nd_ff = 64\n[parallel]\nschedule = \"gpipe\"\n");
  folder.write("broken.toml", "[model]\nwidth = 3\n");
  folder.write("notes.txt", "not a preset");
  const auto r = folder.run("config --json --samples .");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("broken.toml"), std::string::npos) << r.err;  // left out, with a warning
  const auto presets = nlohmann::json::parse(r.out)["presets"];
  ASSERT_EQ(presets.size(), 1u) << presets.dump();
  EXPECT_EQ(presets[0]["name"], "small");
  EXPECT_EQ(presets[0]["file"], std::filesystem::canonical(folder.path("small.toml")).string());
  EXPECT_EQ(presets[0]["values"], (nlohmann::json{{"model.d_ff", 64}, {"parallel.schedule", "gpipe"}}));

  const auto source =
      folder.run("config --json --samples '" + std::string(MOESCOPE_SOURCE_DIR) + "/samples'");
  ASSERT_EQ(source.code, 0) << source.err;
  std::set<std::string> names;
  const auto sourcePresets = nlohmann::json::parse(source.out)["presets"];  // kept: the loop reads into it
  for (const auto& p : sourcePresets) names.insert(p["name"].get<std::string>());
  for (const char* sample : {"dense", "ppmoe", "dpmoe"}) EXPECT_TRUE(names.count(sample)) << sample;

  testing::expectRefused(folder, "config --json --samples nowhere", "nowhere");
}

}  // namespace
}  // namespace moescope::app
