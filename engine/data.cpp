#include "engine/data.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/engine_error.h"
#include "engine/random.h"

namespace moescope::engine {
namespace {

bool endsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string readFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError("data: no such file '" + path + "'");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("data: cannot read '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Value of key in a .npy header dict, e.g. 'descr': '<u2' -> "'<u2'".
std::string headerField(const std::string& header, const std::string& key) {
  auto pos = header.find("'" + key + "'");
  if (pos == std::string::npos) return "";
  pos = header.find(':', pos);
  if (pos == std::string::npos) return "";
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  size_t end = pos;
  if (header[pos] == '(') {
    end = header.find(')', pos);
    return end == std::string::npos ? "" : header.substr(pos, end - pos + 1);
  }
  if (header[pos] == '\'') {
    end = header.find('\'', pos + 1);
    return end == std::string::npos ? "" : header.substr(pos, end - pos + 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  return header.substr(pos, end - pos);
}

std::vector<uint32_t> parseNpy(const std::string& path, const std::string& bytes) {
  auto fail = [&](const std::string& what) -> void { throw InputError("data '" + path + "': " + what); };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) fail("not a .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail("not a .npy file");
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    fail("unsupported .npy version " + std::to_string(major));
  }
  if (header_start + header_len > bytes.size()) fail("truncated .npy header");
  const std::string header = bytes.substr(header_start, header_len);
  const std::string descr = headerField(header, "descr");
  const std::string fortran = headerField(header, "fortran_order");
  const std::string shape = headerField(header, "shape");
  size_t item = 0;
  if (descr == "'<u2'" || descr == "'|u2'") {
    item = 2;
  } else if (descr == "'<i4'" || descr == "'<u4'") {
    item = 4;
  } else {
    fail("dtype " + descr + " is not uint16, int32 or uint32 (little-endian)");
  }
  if (fortran.find("True") != std::string::npos) fail("fortran_order arrays are not supported");
  // A 1-D shape reads "(n,)".
  if (shape.size() < 3 || shape.back() != ')' || shape[shape.size() - 2] != ',' ||
      shape.find(',') != shape.size() - 2) {
    fail("shape " + shape + " is not 1-D");
  }
  int64_t n = 0;
  try {
    n = std::stoll(shape.substr(1, shape.size() - 3));
  } catch (const std::exception&) {
    fail("bad shape " + shape);
  }
  const size_t data_start = header_start + header_len;
  // Compared by division: n * item can overflow for a shape the header claims.
  if (n < 0 || static_cast<uint64_t>(n) > (bytes.size() - data_start) / item) fail("array data is truncated");
  std::vector<uint32_t> tokens(static_cast<size_t>(n));
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + data_start);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t v = 0;
    for (size_t b = 0; b < item; ++b) v |= static_cast<uint32_t>(p[i * item + b]) << (8 * b);
    if (descr == "'<i4'" && (v & 0x80000000u)) fail("token " + std::to_string(i) + " is negative");
    tokens[static_cast<size_t>(i)] = v;
  }
  return tokens;
}

std::vector<uint32_t> bytesToTokens(std::string_view bytes) {
  std::vector<uint32_t> tokens(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) tokens[i] = static_cast<unsigned char>(bytes[i]);
  return tokens;
}

}  // namespace

TokenData TokenData::fromTokens(std::vector<uint32_t> tokens, int64_t seq_len) {
  TokenData data;
  data.count_ = static_cast<int64_t>(tokens.size());
  data.tokens_ = std::move(tokens);
  data.seq_len_ = seq_len;
  return data;
}

TokenData TokenData::load(const Config& config) {
  const auto& path = config.data.path;
  const int64_t V = config.model.vocab_size, T = config.model.seq_len;
  TokenData data;
  data.seq_len_ = T;
  data.vocab_ = static_cast<uint32_t>(V);
  if (path == "random") {
    data.random_ = true;
    data.random_key_ = splitmix64(static_cast<uint64_t>(config.train.seed) ^ 0x7261'6e64'6f6dull);
    data.count_ = (int64_t{1} << 20) * T + 1;
    return data;
  }
  const std::string what = path.empty() ? std::string("the sample corpus") : "'" + path + "'";
  if (path.empty()) {
    if (V < 256) throw InputError("data: the sample corpus is bytes and needs model.vocab_size >= 256");
    data.tokens_ = bytesToTokens(sampleCorpus());
  } else if (endsWith(path, ".npy")) {
    data.tokens_ = parseNpy(path, readFile(path));
    for (size_t i = 0; i < data.tokens_.size(); ++i) {
      if (data.tokens_[i] >= static_cast<uint64_t>(V)) {
        throw InputError("data '" + path + "': token " + std::to_string(i) + " = " +
                         std::to_string(data.tokens_[i]) + " is not below model.vocab_size " +
                         std::to_string(V));
      }
    }
  } else {
    if (V < 256) throw InputError("data '" + path + "': raw bytes need model.vocab_size >= 256");
    data.tokens_ = bytesToTokens(readFile(path));
  }
  data.count_ = static_cast<int64_t>(data.tokens_.size());
  if (data.windows() < 1) {
    throw InputError("data: " + what + " holds " + std::to_string(data.count_) +
                     " tokens, fewer than one window of " + std::to_string(T) + " + 1");
  }
  return data;
}

uint32_t TokenData::token(int64_t i) const {
  if (random_) return static_cast<uint32_t>(splitmix64(random_key_ ^ static_cast<uint64_t>(i)) % vocab_);
  return tokens_[static_cast<size_t>(i)];
}

void TokenData::sequence(int64_t j, int32_t* inputs, int32_t* targets) const {
  const int64_t w = j % windows();
  for (int64_t t = 0; t < seq_len_; ++t) {
    inputs[t] = static_cast<int32_t>(token(w * seq_len_ + t));
    targets[t] = static_cast<int32_t>(token(w * seq_len_ + t + 1));
  }
}

}  // namespace moescope::engine
