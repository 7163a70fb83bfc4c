// Search by name: the names that match a query (case-insensitive substring), every span that carries
// one in time order (start, then track, then index), "i of N", the next or previous match, and the
// marks that show every match in view.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "storage/trace.h"
#include "ui/hit_test.h"
#include "ui/time_mapping.h"
#include "ui/timeline_layout.h"

namespace moescope::ui {

// A match in view: a tick above its row, one pixel wide at least, merged where matches touch.
struct SearchMark {
  float x0 = 0, x1 = 0;
  int32_t row = 0;
  bool operator==(const SearchMark&) const = default;
};

class SpanSearch {
 public:
  // Matches kept in time order; a query that matches more counts them all and walks them by scanning.
  static constexpr size_t kMaxKept = 1'000'000;

  // Matches the query against the trace's string table and collects the matching spans. An empty
  // query matches nothing.
  void setQuery(const storage::Trace& trace, const std::string& query);
  const std::string& query() const { return query_; }
  bool matches(uint32_t name) const { return name < nameMatches_.size() && nameMatches_[name]; }
  const std::vector<bool>& nameMatches() const { return nameMatches_; }
  bool empty() const { return total_ == 0; }

  // Every matching span of the trace.
  size_t count() const { return total_; }
  // The matches in time order; the first kMaxKept when there are more (truncated()).
  const std::vector<SpanRef>& matches() const { return kept_; }
  bool truncated() const { return kept_.size() < total_; }
  // The position of span among the matches (for "i of N"), if it is one of the kept ones.
  std::optional<size_t> indexOf(const storage::Trace& trace, SpanRef span) const;

  // The first match after from (forward) or before it (backward), wrapping around; from may be
  // invalid (start from the beginning or the end).
  std::optional<SpanRef> next(const storage::Trace& trace, SpanRef from, bool forward = true) const;

  // The marks of the matches in view, by row (rows of collapsed ranks have none).
  std::vector<SearchMark> marks(const storage::Trace& trace, const TimelineLayout& layout,
                                const TimeMapping& mapping) const;

 private:
  std::optional<SpanRef> scanNext(const storage::Trace& trace, SpanRef from, bool forward) const;

  std::string query_;
  std::vector<bool> nameMatches_;
  std::vector<SpanRef> kept_;
  size_t total_ = 0;
  int64_t maxDuration_ = 0;  // longest matching span's track look-back, for marks
};

}  // namespace moescope::ui
