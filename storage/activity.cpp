#include "storage/activity.h"

#include <algorithm>
#include <map>

namespace moescope::storage {

CompletedSteps::CompletedSteps(const Trace& trace) {
  for (const auto& [key, value] : trace.meta) {
    if (key == kMetaStepsRecorded && value == kStepsInStepMetric) listed_ = true;
  }
  if (!listed_) return;
  for (const StepMetric& m : trace.steps) steps_.push_back(m.step);
  std::sort(steps_.begin(), steps_.end());
}

bool CompletedSteps::counts(int32_t step) const {
  return !listed_ || step == kNone || std::binary_search(steps_.begin(), steps_.end(), step);
}

std::vector<RankActivity> hostActivity(const Trace& trace) {
  const CompletedSteps completed(trace);
  std::map<int32_t, RankActivity> byRank;
  for (size_t t = 0; t < trace.tracks.size() && t < trace.spans.size(); ++t) {
    const TrackInfo& track = trace.tracks[t];
    if (track.kind != TrackKind::HostThread) continue;
    RankActivity& ra = byRank[track.rank];
    ra.rank = track.rank;
    const RankInfo* info = trace.rank(track.rank);
    ra.stage = info ? info->stage : 0;
    const SpanColumns& c = trace.spans[t];
    ra.items.reserve(ra.items.size() + c.size());
    for (size_t i = 0; i < c.size(); ++i) {
      if (completed.counts(c.stepAt(i)))
        ra.items.push_back({c.start[i], c.endAt(i), c.category[i], c.stepAt(i), c.bytesAt(i)});
    }
  }
  std::vector<RankActivity> out;
  out.reserve(byRank.size());
  for (auto& [rank, ra] : byRank) {
    std::stable_sort(ra.items.begin(), ra.items.end(),
                     [](const Activity& a, const Activity& b) { return a.start < b.start; });
    out.push_back(std::move(ra));
  }
  return out;
}

}  // namespace moescope::storage
