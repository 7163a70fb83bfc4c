#include "ui/time_mapping.h"

#include <algorithm>
#include <cmath>

namespace moescope::ui {

double TimeMapping::nsPerPixel() const {
  return static_cast<double>(std::max<int64_t>(range.duration(), 1)) / std::max(width, 1.0);
}

double TimeMapping::toX(int64_t t) const {
  return static_cast<double>(t - range.start) / nsPerPixel();
}

int64_t TimeMapping::toTime(double x) const {
  return range.start + std::llround(x * nsPerPixel());
}

TimeMapping TimeMapping::zoomedAt(double x, double factor) const {
  if (!(factor > 0)) return *this;
  const int64_t anchor = toTime(x);
  const double newDuration =
      std::max(static_cast<double>(range.duration()) / factor, static_cast<double>(kMinVisibleDuration));
  const double newNsPerPixel = newDuration / std::max(width, 1.0);
  TimeMapping m = *this;
  m.range.start = anchor - std::llround(x * newNsPerPixel);
  m.range.end = m.range.start + std::llround(newDuration);
  return m;
}

TimeMapping TimeMapping::pannedBy(double dx) const {
  const int64_t shift = std::llround(dx * nsPerPixel());
  TimeMapping m = *this;
  m.range.start += shift;
  m.range.end += shift;
  return m;
}

TimeMapping TimeMapping::showing(TimeRange r) const {
  if (r.end < r.start) std::swap(r.start, r.end);
  if (r.duration() < kMinVisibleDuration) {
    const int64_t mid = r.start + r.duration() / 2;
    r.start = mid - kMinVisibleDuration / 2;
    r.end = r.start + kMinVisibleDuration;
  }
  TimeMapping m = *this;
  m.range = r;
  return m;
}

TimeMapping TimeMapping::clampedTo(TimeRange bounds) const {
  if (bounds.duration() <= 0) return *this;
  TimeMapping m = *this;
  if (m.range.duration() >= bounds.duration()) {
    m.range = bounds;
    return m;
  }
  if (m.range.start < bounds.start) {
    m.range.end += bounds.start - m.range.start;
    m.range.start = bounds.start;
  }
  if (m.range.end > bounds.end) {
    m.range.start -= m.range.end - bounds.end;
    m.range.end = bounds.end;
  }
  return m;
}

}  // namespace moescope::ui
