#include "planner/slice_fit.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "planner/median.h"

namespace moescope::planner {

namespace {
// A transfer kind whose median is longer than this does real work (a slow interconnect); its long
// spans are not waits for a core.
constexpr double kShortNs = 0.2e6;
// The fitted slice stays within what a scheduler uses (and what --slice-ms accepts).
constexpr double kLeastSliceNs = 0.1e6, kMostSliceNs = 100e6;
}  // namespace

SliceFit fitSlice(const storage::Trace& trace, const std::function<bool(int32_t)>& skipped) {
  // Durations of each kind of transfer (track, name): a send's and a receive's differ.
  std::map<std::pair<size_t, uint32_t>, std::vector<double>> kinds;
  for (size_t id = 0; id < trace.tracks.size() && id < trace.spans.size(); ++id) {
    if (trace.tracks[id].kind != storage::TrackKind::HostThread) continue;
    const storage::SpanColumns& c = trace.spans[id];
    for (size_t i = 0; i < c.size(); ++i)
      if (c.category[i] == storage::Category::CommPpSendrecv && !skipped(c.stepAt(i)))
        kinds[{id, c.name[i]}].push_back(static_cast<double>(c.durationAt(i)));
  }
  std::vector<double> waits;
  for (const auto& [kind, durations] : kinds) {
    const double typical = median(durations);
    if (typical > kShortNs) continue;
    for (double d : durations)
      if (d - typical > kSliceWaitNs) waits.push_back(d - typical);
  }
  SliceFit fit;
  fit.waits = static_cast<int>(waits.size());
  if (fit.waits < kSliceFitMinWaits) return fit;
  fit.slice_ns = std::clamp(median(waits), kLeastSliceNs, kMostSliceNs);
  fit.fitted = true;
  return fit;
}

}  // namespace moescope::planner
