#include "ui/span_access.h"

#include <algorithm>
#include <limits>

namespace moescope::ui {

size_t firstSpanEndingAfter(const storage::SpanColumns& c, int64_t t) {
  // Every span starting before t - maxDuration ends before t.
  const int64_t from = t - std::max<int64_t>(c.maxDuration, 0);
  const size_t i =
      static_cast<size_t>(std::lower_bound(c.start.begin(), c.start.end(), from) - c.start.begin());
  return i;
}

size_t firstSpanStartingAt(const storage::SpanColumns& c, int64_t t, size_t from, size_t to) {
  return static_cast<size_t>(std::lower_bound(c.start.begin() + static_cast<std::ptrdiff_t>(from),
                                              c.start.begin() + static_cast<std::ptrdiff_t>(to), t) -
                             c.start.begin());
}

size_t gallopToStart(const storage::SpanColumns& c, int64_t t, size_t from, size_t to) {
  size_t lo = from, step = 1;
  while (lo + step < to && c.start[lo + step] < t) {
    lo += step;
    step *= 2;
  }
  return firstSpanStartingAt(c, t, lo, std::min(lo + step, to));
}

int64_t latestEnd(const storage::SpanColumns& c) {
  if (c.size() == 0) return 0;
  const int64_t lastStart = c.start.back();
  size_t i = firstSpanStartingAt(c, lastStart - std::max<int64_t>(c.maxDuration, 0), 0, c.size());
  int64_t e = std::numeric_limits<int64_t>::min();
  for (; i < c.size(); ++i) e = std::max(e, c.endAt(i));
  return e;
}

TimeRange spanExtent(const storage::Trace& trace) {
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  for (const auto& c : trace.spans) {
    if (c.size() == 0) continue;
    lo = std::min(lo, c.start.front());
    hi = std::max(hi, latestEnd(c));
  }
  if (lo > hi) return {0, 0};
  return {lo, hi};
}

TimeRange timelineExtent(const storage::Trace& trace) {
  const TimeRange r = spanExtent(trace);
  if (r.duration() > 0) return r;
  if (trace.run.end_ns > trace.run.start_ns) return {trace.run.start_ns, trace.run.end_ns};
  return {r.start, r.start + 1'000'000};
}

}  // namespace moescope::ui
