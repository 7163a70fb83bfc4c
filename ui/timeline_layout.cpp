#include "ui/timeline_layout.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>

#include "storage/shard_meta.h"

namespace moescope::ui {

int TimelineLayout::rowAt(int y) const {
  auto it =
      std::upper_bound(rows.begin(), rows.end(), y, [](int v, const TimelineRow& r) { return v < r.y; });
  if (it == rows.begin()) return -1;
  --it;
  return y < it->y + it->height ? static_cast<int>(it - rows.begin()) : -1;
}

int TimelineLayout::rowOfTrack(int32_t track) const {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].track == track) return static_cast<int>(i);
  }
  return -1;
}

std::pair<int, int> TimelineLayout::rowsIn(int y0, int y1) const {
  auto first = std::upper_bound(rows.begin(), rows.end(), y0,
                                [](int v, const TimelineRow& r) { return v < r.y + r.height; });
  auto last = std::lower_bound(first, rows.end(), y1, [](const TimelineRow& r, int v) { return r.y < v; });
  return {static_cast<int>(first - rows.begin()), static_cast<int>(last - rows.begin())};
}

int TimelineLayout::laneAt(const TimelineRow& r, int y) const {
  if (r.kind != TimelineRow::Kind::Track || y < boxTop(r) || y >= boxBottom(r)) return -1;
  if (r.lanes <= 1) return 0;
  const int lane = (y - boxTop(r)) / metrics.laneHeight;
  if (lane >= r.lanes || y >= laneBottom(r, lane)) return -1;
  return lane;
}

TimelineLayout layoutTimeline(const storage::Trace& trace, const TimelineSummary& summary,
                              const std::set<int32_t>& collapsedRanks, const LayoutMetrics& metrics,
                              const std::set<int32_t>& expandedCounters) {
  TimelineLayout layout;
  layout.metrics = metrics;

  // Tracks by rank, in their order.
  std::map<int32_t, std::vector<const storage::TrackInfo*>> tracksOf, countersOf;
  for (const auto& t : trace.tracks)
    (t.kind == storage::TrackKind::Counter ? countersOf : tracksOf)[t.rank].push_back(&t);
  for (auto* byRank : {&tracksOf, &countersOf})
    for (auto& [rank, tracks] : *byRank) {
      std::stable_sort(tracks.begin(), tracks.end(), [](const auto* a, const auto* b) {
        return std::tie(a->order, a->id) < std::tie(b->order, b->id);
      });
    }

  // Ranks in pipeline order; a rank that has tracks but no rank row still gets a group.
  std::vector<storage::RankInfo> ranks = trace.ranks;
  for (const auto& [rank, tracks] : tracksOf) {
    if (std::none_of(ranks.begin(), ranks.end(), [r = rank](const auto& x) { return x.rank == r; })) {
      storage::RankInfo info;
      info.rank = rank;
      ranks.push_back(info);
    }
  }
  std::stable_sort(ranks.begin(), ranks.end(), [](const auto& a, const auto& b) {
    return std::tie(a.dp_rank, a.stage, a.tp_rank, a.rank) < std::tie(b.dp_rank, b.stage, b.tp_rank, b.rank);
  });

  int y = metrics.rulerHeight;
  for (const auto& rank : ranks) {
    const bool collapsed = collapsedRanks.count(rank.rank) > 0;
    layout.rows.push_back({TimelineRow::Kind::Group, rank.rank, -1, y, metrics.groupHeight, collapsed});
    y += metrics.groupHeight;
    if (collapsed) continue;
    for (const DeviceBusy& d : summary.devices) {
      if (d.rank != rank.rank) continue;
      TimelineRow row{TimelineRow::Kind::Utilisation, rank.rank, -1, y, metrics.trackHeight, false};
      row.device = d.device;
      layout.rows.push_back(row);
      y += metrics.trackHeight;
    }
    for (const auto* t : tracksOf[rank.rank]) {
      TimelineRow row{TimelineRow::Kind::Track, rank.rank, t->id, y, metrics.trackHeight, false};
      row.lanes = summary.laneCount(t->id);
      row.role = summary.role(t->id);
      if (row.lanes > 1) row.height = 2 * metrics.boxMargin + row.lanes * metrics.laneHeight;
      layout.rows.push_back(row);
      y += row.height;
    }
    const auto counters = countersOf.find(rank.rank);
    if (counters == countersOf.end()) continue;
    const bool expanded = expandedCounters.count(rank.rank) > 0;
    layout.rows.push_back({TimelineRow::Kind::Counters, rank.rank, -1, y, metrics.trackHeight, !expanded});
    y += metrics.trackHeight;
    if (!expanded) continue;
    for (const auto* t : counters->second) {
      layout.rows.push_back({TimelineRow::Kind::Counter, rank.rank, t->id, y, metrics.trackHeight, false});
      y += metrics.trackHeight;
    }
  }
  layout.height = y;
  return layout;
}

std::string trackLabel(const storage::Trace& trace, const TimelineRow& row) {
  if (row.kind == TimelineRow::Kind::Utilisation) return "GPU " + std::to_string(row.device) + " utilisation";
  std::string name = row.track >= 0 && static_cast<size_t>(row.track) < trace.tracks.size()
                         ? trace.tracks[static_cast<size_t>(row.track)].name
                         : std::to_string(row.track);
  if (row.role != StreamRole::None) name += std::string(" · ") + streamRoleName(row.role);
  return name;
}

std::string rankLabel(const storage::RankInfo& rank) {
  std::string s = "rank " + std::to_string(rank.rank) + " · stage " + std::to_string(rank.stage) + " · tp " +
                  std::to_string(rank.tp_rank) + " · dp " + std::to_string(rank.dp_rank);
  s += rank.device == storage::kNone ? std::string(" · cpu") : " · GPU " + std::to_string(rank.device);
  return s;
}

std::string rankClockLabel(const storage::Trace& trace, int32_t rank) {
  const std::string key = storage::rankMetaKey(rank, storage::kClockUncertaintyKey);
  const auto it = std::lower_bound(trace.meta.begin(), trace.meta.end(), key,
                                   [](const auto& entry, const std::string& k) { return entry.first < k; });
  if (it == trace.meta.end() || it->first != key || it->second == "0") return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, " · clock ±%.1f µs", std::atof(it->second.c_str()) / 1e3);
  return buf;
}

}  // namespace moescope::ui
