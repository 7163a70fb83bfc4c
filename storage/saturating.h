// Sums and products of nanoseconds, bytes and counts in the analysis. Every time in a loaded run lies
// in [0, kMaxTime], so one difference always fits int64, but a sum over many spans, ranks or steps of a
// crafted file need not: these stop at the int64 limit instead of overflowing (undefined behaviour,
// seen before as a bubble share of -678% and negative MiB). Internal to storage/.
#pragma once

#include <cstdint>
#include <limits>

namespace moescope::storage {

inline int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t out = 0;
  if (!__builtin_add_overflow(a, b, &out)) return out;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

inline int64_t saturatingMul(int64_t a, int64_t b) {
  int64_t out = 0;
  if (!__builtin_mul_overflow(a, b, &out)) return out;
  return (a < 0) != (b < 0) ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
}

inline int64_t saturatingSub(int64_t a, int64_t b) {
  int64_t out = 0;
  if (!__builtin_sub_overflow(a, b, &out)) return out;
  return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

// into += v, saturating.
inline void addTo(int64_t& into, int64_t v) {
  into = saturatingAdd(into, v);
}

}  // namespace moescope::storage
