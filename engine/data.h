// The token stream of MODEL.md and its windows: a .npy array (uint16, int32, uint32), any other file's raw
// bytes, the built-in sample corpus (path ""), or uniformly random ids from the seed (path "random").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config.h"

namespace moescope::engine {

// The built-in sample corpus (samples/corpus.txt, compiled in).
std::string_view sampleCorpus();

class TokenData {
 public:
  // Loads and checks the data of config.data.path; InputError on any problem (missing file, bad npy,
  // token id >= V, fewer tokens than one window).
  static TokenData load(const Config& config);
  // A stream over the given tokens (tests).
  static TokenData fromTokens(std::vector<uint32_t> tokens, int64_t seq_len);

  int64_t tokenCount() const { return count_; }
  int64_t windows() const { return (count_ - 1) / seq_len_; }
  // Sequence j of the run is window j mod W: inputs tok[w*T .. w*T+T-1], targets one further.
  void sequence(int64_t j, int32_t* inputs, int32_t* targets) const;

 private:
  uint32_t token(int64_t i) const;
  std::vector<uint32_t> tokens_;
  int64_t count_ = 0;
  int64_t seq_len_ = 1;
  bool random_ = false;
  uint64_t random_key_ = 0;
  uint32_t vocab_ = 0;
};

}  // namespace moescope::engine
