// The fuzzer's mutation engine: deterministic (one 64-bit seed gives the same cases on every machine)
// byte-level mutations of any file (truncation, bit flips, overwritten, repeated or removed ranges) and
// the "interesting" values that find off-by-one, sign and overflow mistakes: the edges of every integer
// width, huge and negative counts, NaN and infinities, broken UTF-8, NUL bytes, very long text.
//
// Written here rather than taken from libFuzzer or AFL: those drive a function inside one process,
// while moescope's promise is about the whole command (exit code, one line on stderr, no file changed),
// so every case runs the real moescope-cli; and neither is a Debian package CI installs by default.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace moescope::fuzz {

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  uint64_t next() { return rng_(); }
  // Uniform in [0, n); n > 0.
  size_t below(size_t n) { return static_cast<size_t>(rng_() % n); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

  int64_t interestingInt();
  double interestingReal();
  std::string interestingText();

  // One to three byte-level mutations; `what` gets a description of each (for the failure report).
  std::string mutateBytes(std::string bytes, std::string& what);

 private:
  std::mt19937_64 rng_;
};

}  // namespace moescope::fuzz
