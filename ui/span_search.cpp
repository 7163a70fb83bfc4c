#include "ui/span_search.h"

#include <algorithm>
#include <cctype>
#include <limits>
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

}  // namespace

void SpanSearch::setQuery(const storage::Trace& trace, const std::string& query) {
  query_ = query;
  nameMatches_.assign(trace.strings.size(), false);
  anyName_ = false;
  if (query.empty()) return;
  const std::string q = lower(query);
  for (size_t i = 0; i < trace.strings.size(); ++i) {
    if (lower(trace.strings[i]).find(q) != std::string::npos) {
      nameMatches_[i] = true;
      anyName_ = true;
    }
  }
}

size_t SpanSearch::count(const storage::Trace& trace) const {
  if (!anyName_) return 0;
  size_t n = 0;
  for (const auto& c : trace.spans) {
    for (uint32_t name : c.name) n += matches(name) ? 1 : 0;
  }
  return n;
}

std::optional<SpanRef> SpanSearch::next(const storage::Trace& trace, SpanRef from, bool forward) const {
  if (!anyName_) return std::nullopt;
  Key origin = forward ? Key{std::numeric_limits<int64_t>::min(), -1, 0}
                       : Key{std::numeric_limits<int64_t>::max(), std::numeric_limits<int32_t>::max(), 0};
  if (from.valid() && static_cast<size_t>(from.track) < trace.spans.size() &&
      from.index < trace.spans[static_cast<size_t>(from.track)].size()) {
    origin = Key{trace.spans[static_cast<size_t>(from.track)].start[from.index], from.track, from.index};
  }
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

}  // namespace moescope::ui
