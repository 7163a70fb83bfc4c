#include "ui/zoom_stack.h"

namespace moescope::ui {

void ZoomStack::push(TimeRange r) {
  if (!ranges_.empty() && ranges_.back() == r) return;
  if (ranges_.size() == kMaxDepth) ranges_.erase(ranges_.begin());
  ranges_.push_back(r);
}

std::optional<TimeRange> ZoomStack::pop() {
  if (ranges_.empty()) return std::nullopt;
  TimeRange r = ranges_.back();
  ranges_.pop_back();
  return r;
}

std::optional<TimeRange> ZoomStack::top() const {
  if (ranges_.empty()) return std::nullopt;
  return ranges_.back();
}

}  // namespace moescope::ui
