#include "ui/span_search.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <queue>
#include <tuple>

namespace moescope::ui {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return out;
}

using Key = std::tuple<int64_t, int32_t, uint32_t>;  // start, track, index

Key keyOf(const storage::Trace& trace, SpanRef r) {
  return {trace.spans[static_cast<size_t>(r.track)].start[r.index], r.track, r.index};
}

bool valid(const storage::Trace& trace, SpanRef r) {
  return r.valid() && static_cast<size_t>(r.track) < trace.spans.size() &&
         r.index < trace.spans[static_cast<size_t>(r.track)].size();
}

}  // namespace

void SpanSearch::setQuery(const storage::Trace& trace, const std::string& query) {
  query_ = query;
  nameMatches_.assign(trace.strings.size(), false);
  kept_.clear();
  total_ = 0;
  maxDuration_ = 0;
  if (query.empty()) return;
  const std::string q = lower(query);
  bool any = false;
  for (size_t i = 0; i < trace.strings.size(); ++i) {
    if (lower(trace.strings[i]).find(q) != std::string::npos) {
      nameMatches_[i] = true;
      any = true;
    }
  }
  if (!any) return;
  // Each track's matches are in start order already; a k-way merge puts them in time order.
  std::vector<std::vector<uint32_t>> perTrack(trace.spans.size());
  for (size_t t = 0; t < trace.spans.size(); ++t) {
    const auto& c = trace.spans[t];
    for (size_t i = 0; i < c.size(); ++i) {
      if (matches(c.name[i])) perTrack[t].push_back(static_cast<uint32_t>(i));
    }
    total_ += perTrack[t].size();
    if (!perTrack[t].empty()) maxDuration_ = std::max(maxDuration_, c.maxDuration);
  }
  using Head = std::pair<Key, size_t>;  // key, position in its track's list
  std::priority_queue<Head, std::vector<Head>, std::greater<>> heads;
  for (size_t t = 0; t < perTrack.size(); ++t) {
    if (!perTrack[t].empty()) heads.push({keyOf(trace, {static_cast<int32_t>(t), perTrack[t][0]}), 0});
  }
  kept_.reserve(std::min(total_, kMaxKept));
  while (!heads.empty() && kept_.size() < kMaxKept) {
    const auto [key, pos] = heads.top();
    heads.pop();
    const auto track = std::get<1>(key);
    kept_.push_back({track, std::get<2>(key)});
    const auto& list = perTrack[static_cast<size_t>(track)];
    if (pos + 1 < list.size()) heads.push({keyOf(trace, {track, list[pos + 1]}), pos + 1});
  }
}

std::optional<size_t> SpanSearch::indexOf(const storage::Trace& trace, SpanRef span) const {
  if (!valid(trace, span)) return std::nullopt;
  const Key k = keyOf(trace, span);
  auto it = std::lower_bound(kept_.begin(), kept_.end(), k,
                             [&](SpanRef r, const Key& key) { return keyOf(trace, r) < key; });
  if (it == kept_.end() || *it != span) return std::nullopt;
  return static_cast<size_t>(it - kept_.begin());
}

std::optional<SpanRef> SpanSearch::next(const storage::Trace& trace, SpanRef from, bool forward) const {
  if (total_ == 0) return std::nullopt;
  if (truncated()) return scanNext(trace, from, forward);
  if (!valid(trace, from)) return forward ? kept_.front() : kept_.back();
  const Key k = keyOf(trace, from);
  if (forward) {
    auto it = std::upper_bound(kept_.begin(), kept_.end(), k,
                               [&](const Key& key, SpanRef r) { return key < keyOf(trace, r); });
    return it == kept_.end() ? kept_.front() : *it;
  }
  auto it = std::lower_bound(kept_.begin(), kept_.end(), k,
                             [&](SpanRef r, const Key& key) { return keyOf(trace, r) < key; });
  return it == kept_.begin() ? kept_.back() : *(it - 1);
}

std::optional<SpanRef> SpanSearch::scanNext(const storage::Trace& trace, SpanRef from, bool forward) const {
  Key origin = forward ? Key{std::numeric_limits<int64_t>::min(), -1, 0}
                       : Key{std::numeric_limits<int64_t>::max(), std::numeric_limits<int32_t>::max(), 0};
  if (valid(trace, from)) origin = keyOf(trace, from);
  for (int pass = 0; pass < 2; ++pass) {  // the second pass wraps around
    std::optional<Key> best;
    for (size_t t = 0; t < trace.spans.size(); ++t) {
      const auto& c = trace.spans[t];
      const auto track = static_cast<int32_t>(t);
      if (forward) {
        size_t i = static_cast<size_t>(std::lower_bound(c.start.begin(), c.start.end(), std::get<0>(origin)) -
                                       c.start.begin());
        for (; i < c.size(); ++i) {
          const Key k{c.start[i], track, static_cast<uint32_t>(i)};
          if (best && k >= *best) break;
          if (k > origin && matches(c.name[i])) {
            best = k;
            break;
          }
        }
      } else {
        size_t i = static_cast<size_t>(std::upper_bound(c.start.begin(), c.start.end(), std::get<0>(origin)) -
                                       c.start.begin());
        while (i-- > 0) {
          const Key k{c.start[i], track, static_cast<uint32_t>(i)};
          if (best && k <= *best) break;
          if (k < origin && matches(c.name[i])) {
            best = k;
            break;
          }
        }
      }
    }
    if (best) return SpanRef{std::get<1>(*best), std::get<2>(*best)};
    origin = forward ? Key{std::numeric_limits<int64_t>::min(), -1, 0}
                     : Key{std::numeric_limits<int64_t>::max(), std::numeric_limits<int32_t>::max(), 0};
  }
  return std::nullopt;
}

std::vector<SearchMark> SpanSearch::marks(const storage::Trace& trace, const TimelineLayout& layout,
                                          const TimeMapping& m) const {
  std::vector<SearchMark> out;
  if (kept_.empty()) return out;
  std::vector<int> rowOf(trace.spans.size(), -1);
  for (size_t r = 0; r < layout.rows.size(); ++r) {
    const int32_t t = layout.rows[r].track;
    if (layout.rows[r].kind == TimelineRow::Kind::Track && t >= 0 && static_cast<size_t>(t) < rowOf.size())
      rowOf[static_cast<size_t>(t)] = static_cast<int>(r);
  }
  std::vector<int64_t> lastMark(layout.rows.size(), -1);  // per row: its last mark in out
  const int64_t from = m.range.start - maxDuration_;
  auto it = std::lower_bound(kept_.begin(), kept_.end(), from, [&](SpanRef r, int64_t t) {
    return trace.spans[static_cast<size_t>(r.track)].start[r.index] < t;
  });
  for (; it != kept_.end(); ++it) {
    const auto& c = trace.spans[static_cast<size_t>(it->track)];
    const int64_t s = c.start[it->index], e = c.endAt(it->index);
    if (s >= m.range.end) break;
    const int row = rowOf[static_cast<size_t>(it->track)];
    if (row < 0 || e <= m.range.start) continue;
    const auto x0 = static_cast<float>(std::max(m.toX(s), -1.0));
    const auto x1 = static_cast<float>(std::min(std::max(m.toX(e), m.toX(s) + 1.0), m.width + 1));
    int64_t& last = lastMark[static_cast<size_t>(row)];
    if (last >= 0 && x0 - out[static_cast<size_t>(last)].x1 < 1.0f) {
      out[static_cast<size_t>(last)].x1 = std::max(out[static_cast<size_t>(last)].x1, x1);
      continue;
    }
    last = static_cast<int64_t>(out.size());
    out.push_back({x0, x1, row});
  }
  return out;
}

}  // namespace moescope::ui
