#include "planner/transfer_fit.h"

#include <algorithm>
#include <map>
#include <vector>

#include "planner/median.h"

namespace moescope::planner {

TransferFit fitTransfers(std::span<const std::pair<int64_t, double>> samples) {
  std::map<int64_t, std::vector<double>> bySize;
  for (const auto& [bytes, ns] : samples) bySize[bytes].push_back(ns);
  TransferFit fit;
  fit.sizes = static_cast<int>(bySize.size());
  if (bySize.empty()) return fit;
  std::vector<std::pair<double, double>> points;
  for (auto& [bytes, durations] : bySize) points.emplace_back(static_cast<double>(bytes), median(durations));
  if (points.size() == 1) {
    fit.latency_ns = points.front().second;
    return fit;
  }
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double n = static_cast<double>(points.size());
  for (const auto& [x, y] : points) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double denominator = n * sxx - sx * sx;
  double slope = denominator > 0 ? (n * sxy - sx * sy) / denominator : 0;
  slope = std::max(0.0, slope);
  double intercept = (sy - slope * sx) / n;
  if (intercept < 0) {  // through the origin instead
    intercept = 0;
    slope = sxx > 0 ? std::max(0.0, sxy / sxx) : 0;
  }
  fit.latency_ns = intercept;
  fit.ns_per_byte = slope;
  return fit;
}

double allReduceFactor(int n, int n_measured) {
  auto ring = [](int k) { return k > 1 ? 2.0 * (k - 1) / k : 0.0; };
  return ring(n_measured) > 0 ? ring(n) / ring(n_measured) : 1.0;
}

}  // namespace moescope::planner
