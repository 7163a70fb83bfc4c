// Time <-> pixel mapping of the timeline: which range of the run clock the time area shows, over how
// many pixels. A small value type; every navigation step (zoom at the cursor, pan, fit to a range)
// returns a new mapping, so each can be tested without a widget.
#pragma once

#include <cstdint>

namespace moescope::ui {

// A half-open range [start, end) of the run clock, in nanoseconds.
struct TimeRange {
  int64_t start = 0, end = 0;
  int64_t duration() const { return end - start; }
  bool contains(int64_t t) const { return t >= start && t < end; }
  bool operator==(const TimeRange&) const = default;
};

// The narrowest range the timeline zooms to: 10 ns over the whole time area.
inline constexpr int64_t kMinVisibleDuration = 10;

struct TimeMapping {
  TimeRange range{0, 1};  // the time shown, x = 0 at range.start and x = width at range.end
  double width = 1;       // pixels of the time area

  double nsPerPixel() const;
  double toX(int64_t t) const;     // may lie outside [0, width]
  int64_t toTime(double x) const;  // rounded to the nearest nanosecond

  // factor > 1 zooms in, < 1 zooms out; the time under x stays under x.
  TimeMapping zoomedAt(double x, double factor) const;
  // Moves the view by dx pixels: dx > 0 shows later times.
  TimeMapping pannedBy(double dx) const;
  // Shows r (at least kMinVisibleDuration wide, grown around its middle).
  TimeMapping showing(TimeRange r) const;
  // Keeps the view inside bounds: shifts it back in, and shrinks it if it is wider than bounds.
  TimeMapping clampedTo(TimeRange bounds) const;

  bool operator==(const TimeMapping&) const = default;
};

}  // namespace moescope::ui
