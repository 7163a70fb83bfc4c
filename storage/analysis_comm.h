// Communication by kind (tensor-parallel all-reduce, expert all-to-all, pipeline send/recv, gradient
// all-reduce): time, count, bytes and achieved bandwidth, over all ranks of the run. Every rank's span
// counts: an all-reduce over 4 ranks is 4 spans, each with the bytes that rank contributed.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "storage/activity.h"

namespace moescope::storage {

struct CommStats {
  Category kind = Category::CommTpAllreduce;
  int64_t time_ns = 0;  // sum of the spans' durations
  int64_t count = 0;
  int64_t bytes = 0;
  double gbytes_per_s = 0;  // bytes over the time of the spans that carry bytes (10^9 bytes/s)
  bool operator==(const CommStats&) const = default;
};

// One entry per communication kind that occurs, in category order.
std::vector<CommStats> communicationByKind(std::span<const RankActivity> ranks);

}  // namespace moescope::storage
