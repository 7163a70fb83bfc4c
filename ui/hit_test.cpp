#include "ui/hit_test.h"

#include <algorithm>
#include <cmath>

namespace moescope::ui {
namespace {

// Inside a folded block: the span whose extent holds t, else the one nearest to t.
uint32_t spanAtTime(const storage::SpanColumns& c, uint32_t first, uint32_t count, int64_t t) {
  const auto b = c.start.begin() + first, e = b + count;
  auto it = std::upper_bound(b, e, t);  // first span starting after t
  // The latest-starting span that starts at or before t and still covers t, else the nearer one.
  if (it != b) {
    const auto before = static_cast<uint32_t>(it - c.start.begin() - 1);
    if (c.endAt(before) > t || it == e) return before;
    const auto after = static_cast<uint32_t>(it - c.start.begin());
    return (t - c.endAt(before)) <= (c.start[after] - t) ? before : after;
  }
  return first;
}

}  // namespace

std::optional<Hit> hitTest(const storage::Trace& trace, const TimelineLayout& layout, const DrawList& list,
                           double x, int y, double tolerancePx) {
  const int r = layout.rowAt(y);
  if (r < 0) return std::nullopt;
  const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
  if (row.kind != TimelineRow::Kind::Track || y < layout.boxTop(row) || y >= layout.boxBottom(row)) {
    return std::nullopt;
  }
  const auto items = list.itemsOfRow(r);
  // The last item drawn over x wins (a nested span is drawn over its parent); thin ones get a margin.
  const DrawItem* best = nullptr;
  for (const auto& item : items) {
    const double pad = item.x1 - item.x0 < 2 * tolerancePx ? tolerancePx : 0.0;
    if (x >= item.x0 - pad && x < item.x1 + pad) best = &item;
    if (item.x0 - tolerancePx > x) break;
  }
  if (!best) return std::nullopt;
  if (best->kind == DrawKind::Span) return Hit{{best->track, best->first}, 1};
  const auto& c = trace.spans[static_cast<size_t>(best->track)];
  const int64_t t = list.mapping.toTime(x);
  return Hit{{best->track, spanAtTime(c, best->first, best->count, t)}, best->count};
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
