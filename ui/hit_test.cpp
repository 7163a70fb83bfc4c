#include "ui/hit_test.h"

#include <algorithm>
#include <cmath>

namespace moescope::ui {

std::optional<Hit> hitTest(const storage::Trace& trace, const TimelineSummary& summary,
                           const TimelineLayout& layout, const DrawList& list, double x, int y,
                           double tolerancePx) {
  const int r = layout.rowAt(y);
  if (r < 0) return std::nullopt;
  const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
  const int lane = layout.laneAt(row, y);
  if (lane < 0) return std::nullopt;
  // The last box drawn over x wins; thin ones get a margin.
  const DrawItem* best = nullptr;
  for (const auto& item : list.itemsOfRow(r)) {
    if (item.lane != lane) continue;
    const double pad = item.x1 - item.x0 < 2 * tolerancePx ? tolerancePx : 0.0;
    if (x >= item.x0 - pad && x < item.x1 + pad) best = &item;
  }
  if (best) return Hit{{best->track, best->first}, 1};
  // Folded spans: the lane's span at that time, else the nearest one within the tolerance. A lane's
  // spans do not overlap, so only the last one starting at or before t can hold t.
  const LaneView lv = laneView(trace, summary, row.track, lane);
  if (lv.n == 0) return std::nullopt;
  const TimeMapping& m = list.mapping;
  const int64_t t = m.toTime(x);
  const double nsPerPx = m.nsPerPixel();
  const auto tol = static_cast<int64_t>(std::ceil(tolerancePx * nsPerPx));
  const size_t after = lv.lowerBound(t + 1, 0, lv.n);  // first starting after t
  std::optional<size_t> pick;
  if (after > 0 && lv.end(after - 1) > t) {
    pick = after - 1;
  } else {
    const int64_t dBefore = after > 0 ? t - lv.end(after - 1) : INT64_MAX;
    const int64_t dAfter = after < lv.n ? lv.start(after) - t : INT64_MAX;
    if (std::min(dBefore, dAfter) <= tol) pick = dBefore <= dAfter ? after - 1 : after;
  }
  if (!pick) return std::nullopt;
  // Spans in the pixel under the pointer.
  const double px = std::floor(x);
  const int64_t a = m.toTime(px), b = m.toTime(px + 1);
  const size_t first = lv.lowerBound(a, 0, lv.n), last = lv.lowerBound(b, first, lv.n);
  size_t inPixel = last - first + (first > 0 && lv.end(first - 1) > a ? 1 : 0);
  return Hit{{row.track, lv.at(*pick)}, static_cast<uint32_t>(std::max<size_t>(inPixel, 1))};
}

std::optional<uint32_t> outsideHit(const storage::Trace& trace, const TimelineSummary& summary,
                                   const TimelineLayout& layout, const DrawList& list, double x, int y) {
  const int r = layout.rowAt(y);
  if (r < 0) return std::nullopt;
  const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
  if (row.kind != TimelineRow::Kind::Track || y < layout.boxTop(row) || y >= layout.boxBottom(row))
    return std::nullopt;
  const TrackSummary* ts = summary.track(row.track);
  if (!ts) return std::nullopt;
  for (const OutsideItem& o : list.outside) {
    if (o.row != r || x < o.x0 - 1 || x >= o.x1 + 1) continue;
    // The record of the merged item nearest to x.
    const int64_t t = list.mapping.toTime(x);
    uint32_t best = ts->unlinked[o.first];
    int64_t bestDistance = INT64_MAX;
    for (uint32_t k = o.first; k < o.first + o.count && k < ts->unlinked.size(); ++k) {
      const auto& g = trace.gpu[ts->unlinked[k]];
      const int64_t d = t < g.start ? g.start - t : t >= g.end ? t - g.end : 0;
      if (d < bestDistance) {
        bestDistance = d;
        best = ts->unlinked[k];
      }
    }
    return best;
  }
  return std::nullopt;
}

std::optional<int32_t> groupAt(const TimelineLayout& layout, int y) {
  const int r = layout.rowAt(y);
  if (r < 0 || layout.rows[static_cast<size_t>(r)].kind != TimelineRow::Kind::Group) return std::nullopt;
  return layout.rows[static_cast<size_t>(r)].rank;
}

std::optional<int32_t> countersAt(const TimelineLayout& layout, int y) {
  const int r = layout.rowAt(y);
  if (r < 0 || layout.rows[static_cast<size_t>(r)].kind != TimelineRow::Kind::Counters) return std::nullopt;
  return layout.rows[static_cast<size_t>(r)].rank;
}

}  // namespace moescope::ui
