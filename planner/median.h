// Statistics of measured durations.
//
// The median of a sample (the mean of the two middle values for an even count; 0 for none). The
// planner takes medians of everything it measures: on a shared machine a span now and then runs
// several times longer, preempted, and a mean would carry that into every prediction.
#pragma once

#include <algorithm>
#include <vector>

namespace moescope::planner {

inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

// The typical duration for a sum of many: the mean of the values up to the 90th percentile. A step
// sums hundreds of spans, so its time is their mean, not their median: an expert's span is long in
// the micro-batches that route many tokens to it and short in the others, and on a shared machine
// every span pays a little for preemption on average. The top tenth is left out so that a rare stall
// (a span preempted for a whole scheduler period, ten times its length) does not move every
// prediction.
inline double typical(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t keep = std::max<size_t>(1, (values.size() * 9 + 9) / 10);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += values[i];
  return sum / static_cast<double>(keep);
}

}  // namespace moescope::planner
