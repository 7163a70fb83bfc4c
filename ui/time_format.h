// Time as people read it: durations with a unit picked for their size (ns, µs, ms, s), and the ticks
// of the timeline's ruler at 1, 2 or 5 times a power of ten.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ui/time_mapping.h"

namespace moescope::ui {

// "850 ns", "12.4 µs", "3.25 ms", "1.5 s": three significant digits at most.
std::string formatDuration(int64_t ns);

// Exactly, to the nanosecond, in seconds with the digits grouped by three: "27.412 345 678 s",
// "-0.000 001 250 s". What the details show for a start or end, where three digits are not enough.
std::string formatExact(int64_t ns);

// A label for a tick at offset ns from the run's origin: the unit suits magnitude (the largest offset
// on the ruler), the decimals suit spacing, so all labels share a unit and neighbours differ:
// "1.20 ms", "1.25 ms".
std::string formatTick(int64_t ns, int64_t spacing, int64_t magnitude);

// "250ms", "1.5 s", "40us", "40µs", "1200" (nanoseconds without a unit); nothing when unreadable or
// beyond kMaxDuration either way.
std::optional<int64_t> parseDuration(std::string_view text);
// 2^62 ns (146 years), the run file's time limit: a duration added to a time read from a run file
// (at most 2^62) stays inside int64.
inline constexpr int64_t kMaxDuration = int64_t{1} << 62;
// "T0:T1" with durations as parseDuration reads them, e.g. "120ms:180ms"; T1 must exceed T0.
std::optional<TimeRange> parseTimeRange(std::string_view text);

struct RulerTick {
  double x = 0;        // pixel in the time area
  int64_t t = 0;       // time of the tick, on the run clock
  bool major = false;  // labelled
  bool operator==(const RulerTick&) const = default;
};

// The smallest 1/2/5 x 10^k nanoseconds that is at least minSpacing.
int64_t niceStep(double minSpacing);

// Ticks over the mapping's range: major ticks at least minMajorPx apart, five minor ones per major
// (or two when the step is a 2). Times are aligned to origin (the run's first span), not to clock zero.
std::vector<RulerTick> rulerTicks(const TimeMapping& m, int64_t origin, double minMajorPx,
                                  int64_t* majorStep = nullptr);

}  // namespace moescope::ui
