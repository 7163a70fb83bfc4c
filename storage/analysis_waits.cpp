#include "storage/analysis_waits.h"

#include <algorithm>
#include <cstdlib>

#include "storage/saturating.h"
#include "storage/shard_meta.h"

namespace moescope::storage {

namespace {

struct WaitInterval {
  int64_t start = 0, end = 0;
  int32_t peer = kNone;
};

// Chains longer than this are cut (and the rest blamed on the last rank reached): a pipeline of p stages
// makes chains of about p links.
constexpr int kMaxChain = 64;
// Steps of the chain walk over a whole report. A recorded run needs about (waits x pipeline depth),
// under a million for a 200-step pp 4 run; a crafted file of overlapping waits can make the walk
// exponential (tests/fuzz: 114 KB that ran past a minute). Past the budget each remaining piece is
// blamed on the rank it reached, as a cut chain is.
constexpr int64_t kWalkBudget = int64_t{1} << 24;

// Blames [start, end), which `rank` made someone wait, on whoever was really holding it up: where
// `rank` was itself waiting on another rank in that time, that part goes on along the chain; the rest
// is `rank`'s own (it was computing, or late to call).
void blame(const std::map<int32_t, std::vector<WaitInterval>>& waits, int32_t rank, int64_t start,
           int64_t end, int depth, std::map<int32_t, int64_t>& caused, int64_t& budget) {
  if (end <= start) return;
  const auto it = waits.find(rank);
  int64_t own = end - start;
  if (it != waits.end() && depth < kMaxChain && budget > 0) {
    const std::vector<WaitInterval>& w = it->second;
    // Waits of one track do not overlap; the first that may reach into [start, end):
    auto k = std::lower_bound(w.begin(), w.end(), start,
                              [](const WaitInterval& a, int64_t t) { return a.end <= t; });
    for (; k != w.end() && k->start < end && budget > 0; ++k) {
      --budget;
      const int64_t a = std::max(start, k->start), b = std::min(end, k->end);
      if (b <= a || k->peer == kNone || k->peer == rank) continue;
      own -= b - a;
      blame(waits, k->peer, a, b, depth + 1, caused, budget);
    }
  }
  if (own > 0) addTo(caused[rank], own);
}

}  // namespace

WaitsReport waitsReport(const Trace& trace) {
  std::map<int32_t, RankWaits> ranks;
  std::map<int32_t, std::vector<WaitInterval>> waits;  // per rank, by start
  WaitsReport report;
  for (size_t t = 0; t < trace.tracks.size() && t < trace.spans.size(); ++t) {
    const TrackInfo& track = trace.tracks[t];
    if (track.kind != TrackKind::HostThread) continue;
    RankWaits& r = ranks[track.rank];
    r.rank = track.rank;
    const SpanColumns& c = trace.spans[t];
    for (size_t i = 0; i < c.size(); ++i) {
      if (c.category[i] != Category::Wait) continue;
      const int64_t d = c.durationAt(i);
      const int64_t end = c.endAt(i);
      // The transfer the wait belongs to starts where the wait ends (the next span by start).
      Category waitedIn = Category::Wait;
      for (size_t k = i + 1; k < c.size() && c.start[k] <= end; ++k) {
        if (c.start[k] == end && c.category[k] != Category::Wait) {
          waitedIn = c.category[k];
          break;
        }
      }
      const int32_t peer = c.comm_index.empty() ? kNone : c.commAt(i).peer;
      addTo(r.waited_ns, d);
      addTo(r.by_category[static_cast<size_t>(waitedIn)], d);
      waits[track.rank].push_back({c.start[i], end, peer});
      addTo(report.total_ns, d);
    }
  }
  for (auto& [rank, w] : waits) {
    std::sort(w.begin(), w.end(),
              [](const WaitInterval& a, const WaitInterval& b) { return a.start < b.start; });
  }
  std::map<int32_t, int64_t> caused;
  int64_t budget = kWalkBudget;
  for (const auto& [rank, w] : waits) {
    RankWaits& r = ranks[rank];
    for (const WaitInterval& interval : w) {
      if (interval.peer == kNone || interval.peer == rank) {
        addTo(r.on[kNone], interval.end - interval.start);
        continue;
      }
      std::map<int32_t, int64_t> mine;
      blame(waits, interval.peer, interval.start, interval.end, 1, mine, budget);
      for (const auto& [who, ns] : mine) {
        // A chain that comes back to the waiting rank itself: its own earlier lateness, not a peer's.
        addTo(r.on[who], ns);
        addTo(caused[who], ns);
        addTo(report.attributed_ns, ns);
      }
    }
  }
  for (auto& [rank, r] : ranks) report.ranks.push_back(std::move(r));
  for (const auto& [rank, ns] : caused) {
    report.stragglers.push_back(
        {rank, ns,
         report.attributed_ns > 0 ? static_cast<double>(ns) / static_cast<double>(report.attributed_ns) : 0});
  }
  std::stable_sort(report.stragglers.begin(), report.stragglers.end(),
                   [](const Straggler& a, const Straggler& b) { return a.caused_ns > b.caused_ns; });
  return report;
}

std::vector<RankClock> rankClocks(const Trace& trace) {
  std::map<int32_t, RankClock> clocks;
  auto number = [](const std::string& text, auto& out) {
    char* end = nullptr;
    if constexpr (std::is_floating_point_v<std::remove_reference_t<decltype(out)>>) {
      const double v = std::strtod(text.c_str(), &end);
      if (!text.empty() && *end == '\0') out = v;
    } else {
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (!text.empty() && *end == '\0') out = static_cast<std::remove_reference_t<decltype(out)>>(v);
    }
  };
  for (const auto& [key, value] : trace.meta) {
    // rank.<r>.<field>
    if (key.rfind("rank.", 0) != 0) continue;
    const size_t dot = key.find('.', 5);
    if (dot == std::string::npos) continue;
    int32_t rank = kNone;
    number(key.substr(5, dot - 5), rank);
    if (rank < 0) continue;
    const std::string field = key.substr(dot + 1);
    RankClock& c = clocks[rank];
    c.rank = rank;
    if (field == "process") number(value, c.process);
    if (field == kClockOffsetKey) number(value, c.offset_ns);
    if (field == kClockUncertaintyKey) number(value, c.uncertainty_ns);
    if (field == kClockDriftKey) number(value, c.drift_ppb);
    if (field == kClockSourceKey) c.source = value;
  }
  std::vector<RankClock> out;
  for (auto& [rank, c] : clocks) out.push_back(std::move(c));
  return out;
}

}  // namespace moescope::storage
