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

}  // namespace moescope::planner
