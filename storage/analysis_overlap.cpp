#include "storage/analysis_overlap.h"

#include <map>

#include "storage/intervals.h"
#include "storage/saturating.h"

namespace moescope::storage {
namespace {

OverlapStats rankOverlap(const RankActivity& ra) {
  std::vector<Interval> comm, compute;
  for (const Activity& a : ra.items) {
    if (isCommunication(a.category)) {
      comm.push_back({a.start, a.end});
    } else if (isComputation(a.category)) {
      compute.push_back({a.start, a.end});
    }
  }
  const auto c = mergeIntervals(std::move(comm));
  const auto k = mergeIntervals(std::move(compute));
  OverlapStats s;
  s.stage = ra.stage;
  s.comm_ns = totalLength(c);
  s.compute_ns = totalLength(k);
  s.overlap_ns = intersectionLength(c, k);
  return s;
}

void add(OverlapStats& into, const OverlapStats& s) {
  addTo(into.comm_ns, s.comm_ns);
  addTo(into.compute_ns, s.compute_ns);
  addTo(into.overlap_ns, s.overlap_ns);
  into.ratio =
      into.comm_ns > 0 ? static_cast<double>(into.overlap_ns) / static_cast<double>(into.comm_ns) : 0;
}

}  // namespace

std::vector<OverlapStats> overlapByStage(std::span<const RankActivity> ranks) {
  std::map<int32_t, OverlapStats> byStage;
  for (const RankActivity& ra : ranks) {
    OverlapStats& s = byStage[ra.stage];
    s.stage = ra.stage;
    add(s, rankOverlap(ra));
  }
  std::vector<OverlapStats> out;
  for (const auto& [stage, s] : byStage) out.push_back(s);
  return out;
}

OverlapStats overlapOfRun(std::span<const RankActivity> ranks) {
  OverlapStats run;
  for (const RankActivity& ra : ranks) add(run, rankOverlap(ra));
  return run;
}

}  // namespace moescope::storage
