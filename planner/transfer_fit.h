// A transfer's time as latency plus size over bandwidth, fitted to measured communication spans (the
// time a collective or a pipeline send/recv took once every peer had arrived: `wait` spans are
// apart). One fit per communication kind.
#pragma once

#include <cstdint>
#include <span>
#include <utility>

namespace moescope::planner {

struct TransferFit {
  double latency_ns = 0;
  double ns_per_byte = 0;  // 1 / bandwidth
  int sizes = 0;           // distinct sizes the fit saw; 0: nothing measured
  double time(double bytes) const { return latency_ns + ns_per_byte * bytes; }
  bool operator==(const TransferFit&) const = default;
};

// Fits (bytes, duration ns) pairs: the median duration of each distinct size, then least squares on
// those medians (so a size measured a thousand times weighs as much as one measured ten times, and
// the noise of a shared machine goes into the medians), latency and bandwidth kept >= 0. With one
// size the whole median is taken as latency, so time does not grow with size: the caller scales a
// measured transfer by ratios of this fit, which then stays at 1.
TransferFit fitTransfers(std::span<const std::pair<int64_t, double>> samples);

// The bandwidth term's factor for an all-reduce over n members relative to one over n_measured: a
// ring all-reduce moves 2 (n - 1) / n of the buffer through each member (Patarasuk and Yuan, 2009).
double allReduceFactor(int n, int n_measured);

}  // namespace moescope::planner
