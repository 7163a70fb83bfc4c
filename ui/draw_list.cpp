#include "ui/draw_list.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <tuple>

#include "ui/span_access.h"

namespace moescope::ui {
namespace {

using storage::Category;

constexpr int kFoldSamples = 9;

float clipX(double x, double width) {
  return static_cast<float>(std::clamp(x, -2.0, width + 2.0));
}

// Emits the parts of the idle interval [a, b) that lie inside a step window and in view.
void addBubble(std::vector<BubbleItem>& out, const std::vector<TimeRange>& windows, const TimeMapping& m,
               int row, int64_t a, int64_t b, double minPx) {
  a = std::max(a, m.range.start);
  b = std::min(b, m.range.end);
  if (b <= a) return;
  auto it = std::upper_bound(windows.begin(), windows.end(), a,
                             [](int64_t t, const TimeRange& w) { return t < w.end; });
  for (; it != windows.end() && it->start < b; ++it) {
    const double x0 = m.toX(std::max(a, it->start)), x1 = m.toX(std::min(b, it->end));
    if (x1 - x0 < minPx) continue;
    const float fx0 = clipX(x0, m.width), fx1 = clipX(x1, m.width);
    if (!out.empty() && out.back().row == row && fx0 - out.back().x1 < 0.5f) {
      out.back().x1 = fx1;  // touches the previous one
    } else {
      out.push_back({fx0, fx1, row});
    }
  }
}

// The majority category of a folded block [i, k), from evenly spaced samples, ignoring hidden
// categories; false when every sample is hidden.
bool foldCategory(const storage::SpanColumns& c, size_t i, size_t k, const DrawOptions& o, DrawItem& item) {
  std::array<uint8_t, storage::kCategoryCount> votes{};
  std::array<storage::Phase, storage::kCategoryCount> phaseOf{};
  const size_t n = k - i;
  const size_t samples = std::min<size_t>(n, kFoldSamples);
  int kinds = 0;
  for (size_t s = 0; s < samples; ++s) {
    const size_t idx = i + (samples == 1 ? 0 : s * (n - 1) / (samples - 1));
    const auto cat = static_cast<size_t>(c.category[idx]);
    if (cat >= storage::kCategoryCount || o.hidden.test(cat)) continue;
    if (votes[cat]++ == 0) {
      ++kinds;
      phaseOf[cat] = c.phase[idx];
    }
  }
  if (kinds == 0) return false;
  const size_t best = static_cast<size_t>(std::max_element(votes.begin(), votes.end()) - votes.begin());
  item.category = static_cast<Category>(best);
  item.phase = phaseOf[best];
  item.mixed = kinds > 1;
  return true;
}

void buildRow(const storage::SpanColumns& c, int row, int32_t track, const TimeMapping& m,
              const std::vector<TimeRange>& windows, const DrawOptions& o, DrawList& out) {
  const int64_t t0 = m.range.start, t1 = m.range.end;
  const double nsPerPx = m.nsPerPixel();
  const auto minNs = static_cast<int64_t>(std::ceil(o.minSpanPx * nsPerPx));
  const size_t n = c.size();
  size_t i = firstSpanEndingAfter(c, t0);
  const size_t j = firstSpanStartingAt(c, t1, i, n);
  out.stats.searches += 2;

  // Bubbles: the time up to which the track is covered by a span other than wait.
  int64_t covered = INT64_MIN;
  if (o.bubbles) {
    size_t p = i;
    while (p > 0 && c.category[p - 1] == Category::Wait) --p;
    covered = p > 0 ? c.endAt(p - 1) : INT64_MIN;
  }
  auto cover = [&](int64_t start, int64_t end) {
    if (!o.bubbles) return;
    if (start > covered) addBubble(out.bubbles, windows, m, row, covered, start, o.minBubblePx);
    covered = std::max(covered, end);
  };

  while (i < j) {
    ++out.stats.spansVisited;
    const int64_t s = c.start[i], e = c.endAt(i);
    const Category cat = c.category[i];
    if (e - s >= minNs) {
      if (cat != Category::Wait) cover(s, e);
      if (e > t0 && !o.hidden.test(static_cast<size_t>(cat))) {
        DrawItem item;
        item.x0 = clipX(m.toX(s), m.width);
        item.x1 = clipX(m.toX(e), m.width);
        item.row = row;
        item.track = track;
        item.first = static_cast<uint32_t>(i);
        item.category = cat;
        item.phase = c.phase[i];
        item.microbatch = c.microbatch[i];
        out.items.push_back(item);
      }
      ++i;
      continue;
    }
    // A narrow span: fold it with the narrow spans that follow closely, up to the view's right edge
    // (past it, nothing is drawn, and a gapless track would be walked to its end).
    int64_t foldEnd = e;
    size_t k = i + 1;
    while (k < n && foldEnd < t1) {
      size_t k2 = gallopToStart(c, foldEnd + minNs, k, n);
      ++out.stats.searches;
      if (k2 > k && c.durationAt(k2 - 1) >= minNs) --k2;  // a wide span ends the block
      if (k2 == k) break;
      foldEnd = std::max(foldEnd, c.endAt(k2 - 1));
      k = k2;
    }
    if (cat != Category::Wait || k - i > 1) cover(s, foldEnd);
    if (foldEnd > t0) {
      DrawItem item;
      item.row = row;
      item.track = track;
      item.first = static_cast<uint32_t>(i);
      item.count = static_cast<uint32_t>(k - i);
      item.kind = k - i > 1 ? DrawKind::Folded : DrawKind::Span;
      item.microbatch = c.microbatch[i];
      bool visible = true;
      if (k - i == 1) {
        item.category = cat;
        item.phase = c.phase[i];
        visible = !o.hidden.test(static_cast<size_t>(cat));
      } else {
        visible = foldCategory(c, i, k, o, item);
      }
      if (visible) {
        // A block is at least one pixel wide, so that a lone narrow span still shows.
        const double x0 = m.toX(s), x1 = std::max(m.toX(foldEnd), x0 + 1.0);
        item.x0 = clipX(x0, m.width);
        item.x1 = clipX(x1, m.width);
        out.items.push_back(item);
      }
    }
    i = k;
  }
  if (o.bubbles) {
    const int64_t next = j < n ? c.start[j] : INT64_MAX;
    if (next > covered) addBubble(out.bubbles, windows, m, row, covered, next, o.minBubblePx);
  }
}

void buildPhaseRow(const storage::SpanColumns& c, int row, const TimeMapping& m, const DrawOptions& o,
                   DrawList& out) {
  const int64_t t0 = m.range.start, t1 = m.range.end;
  const size_t n = c.size();
  const size_t i = firstSpanEndingAfter(c, t0);
  const size_t j = firstSpanStartingAt(c, t1, i, n);
  out.stats.searches += 2;
  if (j - i > o.maxPhaseWalk) return;
  bool open = false;
  int64_t curStart = 0, curEnd = 0;
  int32_t curStep = 0;
  PhaseItem cur;
  cur.row = row;
  auto close = [&] {
    if (open && curEnd > t0) {
      PhaseItem item = cur;
      const double x0 = m.toX(curStart), x1 = std::max(m.toX(curEnd), x0 + 1.0);
      item.x0 = clipX(x0, m.width);
      item.x1 = clipX(x1, m.width);
      out.phases.push_back(item);
    }
    open = false;
  };
  for (size_t k = i; k < j; ++k) {
    ++out.stats.spansVisited;
    const storage::Phase phase = c.phase[k];
    // Waits inside a stretch (for a tensor-parallel peer, say) leave it whole; a stretch starts and
    // ends with work, so the waits before and after it (the pipeline's bubbles) stay outside.
    if (c.category[k] == Category::Wait) continue;
    if (phase == storage::Phase::None) {
      close();
      continue;
    }
    const int64_t s = c.start[k], e = c.endAt(k);
    if (open && phase == cur.phase && c.microbatch[k] == cur.microbatch && c.chunk[k] == cur.chunk &&
        c.step[k] == curStep) {
      curEnd = std::max(curEnd, e);
      continue;
    }
    close();
    open = true;
    curStart = s;
    curEnd = e;
    curStep = c.step[k];
    cur.phase = phase;
    cur.microbatch = c.microbatch[k];
    cur.chunk = c.chunk[k];
  }
  close();
}

}  // namespace

std::string phaseLabel(storage::Phase phase, int microbatch, int chunk) {
  if (phase == storage::Phase::Optimizer) return "opt";
  if (microbatch < 0) return {};
  std::string s(1, phase == storage::Phase::Backward         ? 'B'
                   : phase == storage::Phase::BackwardWeight ? 'W'
                                                             : 'F');
  s += std::to_string(microbatch);
  if (chunk >= 0) {
    s += '.';
    s += std::to_string(chunk);
  }
  return s;
}

std::span<const DrawItem> DrawList::itemsOfRow(int row) const {
  if (row < 0 || static_cast<size_t>(row) >= rowItems.size()) return {};
  const auto [b, e] = rowItems[static_cast<size_t>(row)];
  return std::span<const DrawItem>(items.data() + b, e - b);
}

std::vector<TimeRange> bubbleWindows(const storage::Trace& trace) {
  std::vector<TimeRange> w;
  for (const auto& s : trace.steps) {
    if (s.end_ns > s.start_ns) w.push_back({s.start_ns, s.end_ns});
  }
  if (w.empty()) {
    const TimeRange r = spanExtent(trace);
    if (r.duration() > 0) w.push_back(r);
    return w;
  }
  std::sort(w.begin(), w.end(), [](const TimeRange& a, const TimeRange& b) { return a.start < b.start; });
  std::vector<TimeRange> merged;
  for (const auto& r : w) {
    if (!merged.empty() && r.start <= merged.back().end)
      merged.back().end = std::max(merged.back().end, r.end);
    else
      merged.push_back(r);
  }
  return merged;
}

DrawList buildDrawList(const storage::Trace& trace, const TimelineLayout& layout, const TimeMapping& mapping,
                       const DrawOptions& options) {
  DrawList list;
  list.mapping = mapping;
  list.rowItems.assign(layout.rows.size(), {0, 0});
  const std::vector<TimeRange> windows = options.bubbles ? bubbleWindows(trace) : std::vector<TimeRange>{};
  // Each rank's first track (lowest order), for the header stretches.
  std::map<int32_t, const storage::TrackInfo*> firstTrack;
  for (const auto& t : trace.tracks) {
    if (t.kind == storage::TrackKind::Counter) continue;
    auto& f = firstTrack[t.rank];
    if (!f || std::tie(t.order, t.id) < std::tie(f->order, f->id)) f = &t;
  }
  const auto [r0, r1] = layout.rowsIn(options.yTop, options.yBottom);
  for (int r = r0; r < r1; ++r) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
    if (row.kind == TimelineRow::Kind::Group) {
      auto it = firstTrack.find(row.rank);
      if (it != firstTrack.end() && static_cast<size_t>(it->second->id) < trace.spans.size()) {
        buildPhaseRow(trace.spans[static_cast<size_t>(it->second->id)], r, mapping, options, list);
      }
    }
    const auto begin = static_cast<uint32_t>(list.items.size());
    if (row.kind == TimelineRow::Kind::Track && row.track >= 0 &&
        static_cast<size_t>(row.track) < trace.spans.size()) {
      ++list.stats.rows;
      // A GPU stream that ran nothing inside a span (copies at start-up, a library's own stream) is not
      // a stage sitting idle: no bubbles on its row.
      const auto& spans = trace.spans[static_cast<size_t>(row.track)];
      const bool unusedStream =
          spans.size() == 0 && static_cast<size_t>(row.track) < trace.tracks.size() &&
          trace.tracks[static_cast<size_t>(row.track)].kind == storage::TrackKind::GpuStream;
      buildRow(spans, r, row.track, mapping, unusedStream ? std::vector<TimeRange>{} : windows, options,
               list);
    }
    list.rowItems[static_cast<size_t>(r)] = {begin, static_cast<uint32_t>(list.items.size())};
  }
  return list;
}

}  // namespace moescope::ui
