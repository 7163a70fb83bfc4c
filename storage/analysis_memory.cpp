#include "storage/analysis_memory.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace moescope::storage {

std::vector<StagePeakActivation> peakActivationPerStage(const Trace& trace) {
  std::map<int32_t, int64_t> byStage;
  for (const CounterSample& c : trace.counters) {
    if (c.track < 0 || static_cast<size_t>(c.track) >= trace.tracks.size()) continue;
    const TrackInfo& track = trace.tracks[static_cast<size_t>(c.track)];
    if (track.kind != TrackKind::Counter || track.name != kPeakActivationCounter) continue;
    if (!std::isfinite(c.value) || c.value < 0 || c.value > 9.2e18) continue;
    const RankInfo* rank = trace.rank(track.rank);
    int64_t& peak = byStage[rank ? rank->stage : 0];
    peak = std::max(peak, static_cast<int64_t>(c.value));
  }
  std::vector<StagePeakActivation> out;
  for (const auto& [stage, bytes] : byStage) out.push_back({stage, bytes});
  return out;
}

int64_t peakActivation(const Trace& trace) {
  int64_t peak = 0;
  for (const StagePeakActivation& s : peakActivationPerStage(trace)) peak = std::max(peak, s.bytes);
  return peak;
}

}  // namespace moescope::storage
