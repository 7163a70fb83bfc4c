#include "ui/counter_rows.h"

#include <QPainterPath>
#include <algorithm>

#include "ui/timeline_palette.h"

namespace moescope::ui {

std::pair<size_t, size_t> counterSamples(const storage::Trace& trace, int32_t track) {
  const auto& c = trace.counters;
  const auto first = std::lower_bound(c.begin(), c.end(), track,
                                      [](const storage::CounterSample& s, int32_t t) { return s.track < t; });
  const auto last = std::upper_bound(first, c.end(), track,
                                     [](int32_t t, const storage::CounterSample& s) { return t < s.track; });
  return {static_cast<size_t>(first - c.begin()), static_cast<size_t>(last - c.begin())};
}

void paintCounterRow(QPainter& p, const storage::Trace& trace, int32_t track, QRect area,
                     const TimeMapping& m) {
  const auto [first, last] = counterSamples(trace, track);
  if (first == last) return;
  const auto& c = trace.counters;
  double top = 0;
  for (size_t i = first; i < last; ++i) top = std::max(top, c[i].value);
  if (top <= 0) top = 1;
  // From the last sample before the view to the first after it: the line crosses both edges.
  auto begin =
      std::lower_bound(c.begin() + static_cast<ptrdiff_t>(first), c.begin() + static_cast<ptrdiff_t>(last),
                       m.range.start, [](const storage::CounterSample& s, int64_t t) { return s.time < t; });
  if (begin != c.begin() + static_cast<ptrdiff_t>(first)) --begin;
  auto end = std::upper_bound(begin, c.begin() + static_cast<ptrdiff_t>(last), m.range.end,
                              [](int64_t t, const storage::CounterSample& s) { return t < s.time; });
  if (end != c.begin() + static_cast<ptrdiff_t>(last)) ++end;
  auto y = [&](double v) { return area.bottom() - 2 - v / top * (area.height() - 4); };
  QPainterPath path;
  double lastY = 0;
  for (auto it = begin; it != end; ++it) {
    const double x = area.left() + std::clamp(m.toX(it->time), -1.0, static_cast<double>(area.width()) + 1);
    if (it == begin) {
      path.moveTo(x, y(it->value));
    } else {
      path.lineTo(x, lastY);  // a counter holds its value until the next sample
      path.lineTo(x, y(it->value));
    }
    lastY = y(it->value);
  }
  path.lineTo(area.right(), lastY);
  p.save();
  p.setPen(QPen(palette::kBackwardStretch, 1.2));
  p.setBrush(Qt::NoBrush);
  p.drawPath(path);
  p.setPen(palette::kLabelText);
  p.drawText(area.adjusted(0, 0, -4, 0), Qt::AlignRight | Qt::AlignTop, QString::number(top, 'g', 4));
  p.restore();
}

}  // namespace moescope::ui
