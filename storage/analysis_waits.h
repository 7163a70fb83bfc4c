// Who waited for whom. Every `wait` span of a communication call names the rank it waited for (the last
// member to arrive at a collective, or the sender of a receive: SpanRecord::peer); the category it
// waited in is that of the transfer that follows it on the same track (a barrier's wait has none and
// counts as `wait`). The waiting is attributed along chains: where the rank waited for was itself
// waiting on a third rank during that time, that part goes to the third (and on), so a slow rank is
// blamed for the waits it causes two stages down the pipeline too, not the neighbour that only passed
// its delay on. Per rank: the time it waited, by category and by the rank it is attributed to. Per
// rank: the time it made the others wait, which ranks the stragglers. Wait spans without a peer (runs
// recorded before calls had an identity, or by a communicator that does not know the peer) count as
// unattributed (kNone).
//
// Also each rank's clock alignment, for runs recorded by several processes (storage/shard_meta.h):
// a timeline drawn across processes is only as exact as these uncertainties.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "storage/trace.h"

namespace moescope::storage {

struct RankWaits {
  int32_t rank = 0;
  int64_t waited_ns = 0;
  std::array<int64_t, kCategoryCount> by_category{};  // the category of the call waited in
  std::map<int32_t, int64_t> on;                      // attributed rank -> ns; kNone: unattributed
  bool operator==(const RankWaits&) const = default;
};

struct Straggler {
  int32_t rank = 0;
  int64_t caused_ns = 0;  // the others' waiting attributed to this rank
  double share = 0;       // of all attributed waiting
  bool operator==(const Straggler&) const = default;
};

struct WaitsReport {
  std::vector<RankWaits> ranks;       // every rank with a host track, ascending
  std::vector<Straggler> stragglers;  // ranks that made others wait, the most first
  int64_t total_ns = 0, attributed_ns = 0;
  bool operator==(const WaitsReport&) const = default;
};

WaitsReport waitsReport(const Trace& trace);

struct RankClock {
  int32_t rank = 0;
  int32_t process = kNone;
  int64_t offset_ns = 0, uncertainty_ns = 0;
  double drift_ppb = 0;
  std::string source;
  bool operator==(const RankClock&) const = default;
};

// From the run's meta (rank.<r>.clock.*); empty for a run of one process.
std::vector<RankClock> rankClocks(const Trace& trace);

}  // namespace moescope::storage
