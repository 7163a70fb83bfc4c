#include "engine/data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/engine_error.h"
#include "tests/common/temp_dir.h"

namespace moescope::engine {
namespace {

namespace fs = std::filesystem;

// A version 1.0 .npy file holding a 1-D array.
void writeNpy(const fs::path& path, const std::string& descr, const std::vector<uint32_t>& values,
              size_t item) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" +
                       std::to_string(values.size()) + ",), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out << header;
  for (uint32_t v : values)
    for (size_t b = 0; b < item; ++b) out.put(static_cast<char>((v >> (8 * b)) & 0xff));
}

Config dataConfig(const std::string& path, int64_t V = 256, int64_t T = 4) {
  Config c;
  c.model.vocab_size = V;
  c.model.seq_len = T;
  c.data.path = path;
  return c;
}

TEST(TokenData, WindowsAndSequenceOrder) {
  std::vector<uint32_t> tokens(11);
  for (uint32_t i = 0; i < tokens.size(); ++i) tokens[i] = i;
  const TokenData d = TokenData::fromTokens(tokens, 4);
  EXPECT_EQ(d.windows(), 2);  // floor((11 - 1) / 4)
  int32_t in[4], tgt[4];
  d.sequence(1, in, tgt);
  EXPECT_EQ(in[0], 4);
  EXPECT_EQ(in[3], 7);
  EXPECT_EQ(tgt[0], 5);
  EXPECT_EQ(tgt[3], 8);
  d.sequence(2, in, tgt);  // sequence j is window j mod W
  EXPECT_EQ(in[0], 0);
  EXPECT_EQ(tgt[3], 4);
}

TEST(TokenData, ReadsNpyOfEachDtype) {
  const moescope::testing::TempDir dir;
  const std::vector<uint32_t> values = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (auto [descr, item] : {std::pair{"<u2", 2}, std::pair{"<i4", 4}, std::pair{"<u4", 4}}) {
    const fs::path p = dir.path() / (std::string("t") + std::to_string(item) + descr[1] + ".npy");
    writeNpy(p, descr, values, static_cast<size_t>(item));
    const TokenData d = TokenData::load(dataConfig(p.string(), 16));
    EXPECT_EQ(d.tokenCount(), 9);
    int32_t in[4], tgt[4];
    d.sequence(1, in, tgt);
    EXPECT_EQ(in[0], 5) << descr;
    EXPECT_EQ(tgt[3], 9) << descr;
  }
}

TEST(TokenData, NpyErrors) {
  const moescope::testing::TempDir dir;
  writeNpy(dir.path() / "big.npy", "<u2", {1, 2, 3, 4, 5, 300}, 2);
  try {
    TokenData::load(dataConfig((dir.path() / "big.npy").string(), 256));
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("token 5 = 300"), std::string::npos) << e.what();
  }
  writeNpy(dir.path() / "f8.npy", "<f8", {1, 2, 3, 4, 5, 6}, 8);
  EXPECT_THROW(TokenData::load(dataConfig((dir.path() / "f8.npy").string())), InputError);
  writeNpy(dir.path() / "short.npy", "<u2", {1, 2, 3, 4}, 2);  // 4 tokens: no window of 4 + 1
  EXPECT_THROW(TokenData::load(dataConfig((dir.path() / "short.npy").string())), InputError);
  std::ofstream(dir.path() / "bad.npy") << "not numpy";
  EXPECT_THROW(TokenData::load(dataConfig((dir.path() / "bad.npy").string())), InputError);
}

TEST(TokenData, RawBytesAndMissingFiles) {
  const moescope::testing::TempDir dir;
  std::ofstream(dir.path() / "text.txt") << "hello world";
  const TokenData d = TokenData::load(dataConfig((dir.path() / "text.txt").string()));
  int32_t in[4], tgt[4];
  d.sequence(0, in, tgt);
  EXPECT_EQ(in[0], 'h');
  EXPECT_EQ(tgt[0], 'e');
  EXPECT_THROW(TokenData::load(dataConfig((dir.path() / "text.txt").string(), 100)), InputError);  // V < 256
  try {
    TokenData::load(dataConfig((dir.path() / "missing.bin").string()));
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.bin"), std::string::npos);
  }
}

TEST(TokenData, SampleCorpusAndRandom) {
  EXPECT_GT(sampleCorpus().size(), 20000u);
  const TokenData corpus = TokenData::load(dataConfig(""));
  EXPECT_EQ(corpus.tokenCount(), static_cast<int64_t>(sampleCorpus().size()));
  Config c = dataConfig("random", 50, 8);
  const TokenData a = TokenData::load(c), b = TokenData::load(c);
  int32_t in_a[8], in_b[8], tgt[8];
  a.sequence(12345, in_a, tgt);
  b.sequence(12345, in_b, tgt);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(in_a[i], in_b[i]);
    EXPECT_LT(in_a[i], 50);
  }
  c.train.seed = 99;
  TokenData::load(c).sequence(12345, in_b, tgt);
  EXPECT_NE(std::vector<int32_t>(in_a, in_a + 8), std::vector<int32_t>(in_b, in_b + 8));
}

}  // namespace
}  // namespace moescope::engine
