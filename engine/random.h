// The engine's counter-based randomness: a value is a pure function of (key, counter), so anything drawn
// from it (initial weights, random token ids) is the same whatever thread, rank or layout draws it.
#pragma once

#include <cstdint>

namespace moescope::engine {

// SplitMix64's output function: a bijective mix of 64 bits.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace moescope::engine
