// Interval arithmetic on time: merging, total length, intersection. The analysis builds on it for
// any source of timed activity (host spans now, GPU kernels later).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace moescope::storage {

struct Interval {
  int64_t start = 0, end = 0;
  int64_t length() const { return end > start ? end - start : 0; }
  bool operator==(const Interval&) const = default;
};

// Sorts and merges overlapping or touching intervals, dropping empty ones: the union, as a sorted
// list of disjoint intervals ("merged" below).
std::vector<Interval> mergeIntervals(std::vector<Interval> intervals);
// Sum of the lengths of a merged list.
int64_t totalLength(std::span<const Interval> merged);
// The intersection of two merged lists, merged.
std::vector<Interval> intersectIntervals(std::span<const Interval> a, std::span<const Interval> b);
// Length of the intersection of two merged lists.
int64_t intersectionLength(std::span<const Interval> a, std::span<const Interval> b);

}  // namespace moescope::storage
