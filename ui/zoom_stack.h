// The undo history of the timeline's zoom: each zoom to a range (drag-select, fit to a step, go to a
// step, fit all, the first wheel turn of a burst) pushes the range it leaves; undo pops it.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "ui/time_mapping.h"

namespace moescope::ui {

class ZoomStack {
 public:
  static constexpr size_t kMaxDepth = 100;  // the oldest entries go first

  // Remembers r, unless it is the range on top already.
  void push(TimeRange r);
  // The range to go back to, or nothing when the history is empty.
  std::optional<TimeRange> pop();
  std::optional<TimeRange> top() const;
  size_t size() const { return ranges_.size(); }
  bool empty() const { return ranges_.empty(); }
  void clear() { ranges_.clear(); }

 private:
  std::vector<TimeRange> ranges_;
};

}  // namespace moescope::ui
