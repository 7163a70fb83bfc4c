// Search by name: the names that match a query (case-insensitive substring), how many spans carry
// them, and the next or previous matching span in time order (start, then track).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "storage/trace.h"
#include "ui/hit_test.h"

namespace moescope::ui {

class SpanSearch {
 public:
  // Matches the query against the trace's string table. An empty query matches nothing.
  void setQuery(const storage::Trace& trace, const std::string& query);
  const std::string& query() const { return query_; }
  bool matches(uint32_t name) const { return name < nameMatches_.size() && nameMatches_[name]; }
  bool empty() const { return !anyName_; }

  // Spans whose name matches (scans the name columns).
  size_t count(const storage::Trace& trace) const;
  // The first match after from (forward) or before it (backward), wrapping around; from may be
  // invalid (start from the beginning or the end).
  std::optional<SpanRef> next(const storage::Trace& trace, SpanRef from, bool forward = true) const;

 private:
  std::string query_;
  std::vector<bool> nameMatches_;
  bool anyName_ = false;
};

}  // namespace moescope::ui
