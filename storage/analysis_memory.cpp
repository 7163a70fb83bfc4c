#include "storage/analysis_memory.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string_view>

namespace moescope::storage {

namespace {

// The largest sample per stage of the counter tracks named `counter`.
std::vector<StagePeak> peakPerStage(const Trace& trace, std::string_view counter) {
  std::map<int32_t, int64_t> byStage;
  for (const CounterSample& c : trace.counters) {
    if (c.track < 0 || static_cast<size_t>(c.track) >= trace.tracks.size()) continue;
    const TrackInfo& track = trace.tracks[static_cast<size_t>(c.track)];
    if (track.kind != TrackKind::Counter || track.name != counter) continue;
    if (!std::isfinite(c.value) || c.value < 0 || c.value > 9.2e18) continue;
    const RankInfo* rank = trace.rank(track.rank);
    int64_t& peak = byStage[rank ? rank->stage : 0];
    peak = std::max(peak, static_cast<int64_t>(c.value));
  }
  std::vector<StagePeak> out;
  for (const auto& [stage, bytes] : byStage) out.push_back({stage, bytes});
  return out;
}

int64_t largest(const std::vector<StagePeak>& stages) {
  int64_t peak = 0;
  for (const StagePeak& s : stages) peak = std::max(peak, s.bytes);
  return peak;
}

}  // namespace

std::vector<StagePeak> peakActivationPerStage(const Trace& trace) {
  return peakPerStage(trace, kPeakActivationCounter);
}

int64_t peakActivation(const Trace& trace) {
  return largest(peakActivationPerStage(trace));
}

std::vector<StagePeak> peakDeviceMemoryPerStage(const Trace& trace) {
  return peakPerStage(trace, kPeakDeviceMemoryCounter);
}

int64_t peakDeviceMemory(const Trace& trace) {
  int64_t peak = largest(peakDeviceMemoryPerStage(trace));
  for (const StepMetric& m : trace.steps) peak = std::max(peak, m.peak_memory_bytes);
  return peak;
}

}  // namespace moescope::storage
