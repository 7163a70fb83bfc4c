#include "storage/intervals.h"

#include <algorithm>

namespace moescope::storage {

std::vector<Interval> mergeIntervals(std::vector<Interval> intervals) {
  std::erase_if(intervals, [](const Interval& i) { return i.end <= i.start; });
  std::sort(intervals.begin(), intervals.end(),
            [](const Interval& a, const Interval& b) { return a.start < b.start; });
  std::vector<Interval> merged;
  for (const Interval& i : intervals) {
    if (!merged.empty() && i.start <= merged.back().end) {
      merged.back().end = std::max(merged.back().end, i.end);
    } else {
      merged.push_back(i);
    }
  }
  return merged;
}

int64_t totalLength(std::span<const Interval> merged) {
  int64_t total = 0;
  for (const Interval& i : merged) total += i.length();
  return total;
}

std::vector<Interval> intersectIntervals(std::span<const Interval> a, std::span<const Interval> b) {
  std::vector<Interval> out;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const int64_t start = std::max(a[i].start, b[j].start);
    const int64_t end = std::min(a[i].end, b[j].end);
    if (start < end) out.push_back({start, end});
    if (a[i].end < b[j].end) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
}

int64_t intersectionLength(std::span<const Interval> a, std::span<const Interval> b) {
  return totalLength(intersectIntervals(a, b));
}

}  // namespace moescope::storage
