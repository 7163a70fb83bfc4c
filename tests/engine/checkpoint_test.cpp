#include "engine/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/engine_error.h"
#include "engine/trainer.h"
#include "tests/common/temp_dir.h"

namespace moescope::engine {
namespace {

namespace fs = std::filesystem;

ModelConfig small() {
  ModelConfig m;
  m.vocab_size = 32;
  m.seq_len = 8;
  m.d_model = 8;
  m.n_heads = 2;
  m.n_layers = 2;
  m.d_ff = 16;
  m.n_experts = 2;
  m.moe_every = 2;
  return m;
}

std::string expectLoadError(const fs::path& path, const ModelConfig& m) {
  try {
    loadCheckpoint(path.string(), m);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "loaded";
  return "";
}

void save(const std::string& path, const ModelConfig& m, const ModelWeights& w) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  writeCheckpoint(out, m, w);
  ASSERT_TRUE(out.good());
}

TEST(Checkpoint, RoundTripsAndFollowsSafetensors) {
  const ModelConfig m = small();
  const ModelWeights w = initialWeights(m, 5);
  const moescope::testing::TempDir dir;
  const fs::path path = dir.file("rt.safetensors");
  save(path.string(), m, w);
  EXPECT_EQ(loadCheckpoint(path.string(), m), w);

  std::ifstream in(path, std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  const auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"]["format"], "moescope");
  EXPECT_NE(j["__metadata__"]["config"].get<std::string>().find("d_model = 8"), std::string::npos);
  EXPECT_EQ(j["wte"]["dtype"], "F32");
  EXPECT_EQ(j["wte"]["shape"], nlohmann::json::array({32, 8}));
  EXPECT_EQ(j["wte"]["data_offsets"][0], 0);
  EXPECT_EQ(fs::file_size(path), 8 + n + j["lm_head.weight"]["data_offsets"][1].get<uint64_t>());
}

TEST(Checkpoint, WrongShapeOrNameIsAnErrorNamingTheTensor) {
  const ModelConfig m = small();
  const moescope::testing::TempDir dir;
  const fs::path path = dir.file("bad.safetensors");
  ModelWeights w = initialWeights(m, 5);
  // A checkpoint of a model with a wider FFN: the first c_fc weight has the wrong shape.
  ModelConfig wide = m;
  wide.d_ff = 32;
  save(path.string(), wide, initialWeights(wide, 5));
  std::string error = expectLoadError(path, m);
  EXPECT_NE(error.find("h.0.mlp.c_fc.weight"), std::string::npos) << error;
  EXPECT_NE(error.find("[32, 8]"), std::string::npos) << error;

  // A renamed tensor: reported missing.
  ModelWeights renamed = w;
  renamed[2].name = "h.0.ln1.weight";
  save(path.string(), m, renamed);
  error = expectLoadError(path, m);
  EXPECT_NE(error.find("h.0.ln_1.weight"), std::string::npos) << error;

  // An extra tensor.
  ModelWeights extra = w;
  extra.push_back({"extra.weight", {2}, {1, 2}});
  save(path.string(), m, extra);
  error = expectLoadError(path, m);
  EXPECT_NE(error.find("extra.weight"), std::string::npos) << error;

  // Not a safetensors file at all, and a missing file.
  std::ofstream(path, std::ios::trunc) << "garbage";
  EXPECT_FALSE(expectLoadError(path, m).empty());
  fs::remove(path);
  EXPECT_NE(expectLoadError(path, m).find(path.string()), std::string::npos);
}

}  // namespace
}  // namespace moescope::engine
