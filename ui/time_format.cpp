#include "ui/time_format.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace moescope::ui {
namespace {

struct Unit {
  double scale;
  const char* name;
};

Unit unitFor(int64_t ns) {
  const int64_t a = std::llabs(ns);
  if (a < 1'000) return {1, "ns"};
  if (a < 1'000'000) return {1e3, "µs"};
  if (a < 1'000'000'000) return {1e6, "ms"};
  return {1e9, "s"};
}

std::string format(double value, int decimals, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f %s", decimals, value, unit);
  return buf;
}

}  // namespace

std::string formatDuration(int64_t ns) {
  const Unit u = unitFor(ns);
  const double v = static_cast<double>(ns) / u.scale;
  const double a = std::fabs(v);
  const int decimals = u.scale == 1 ? 0 : a < 10 ? 2 : a < 100 ? 1 : 0;
  return format(v, decimals, u.name);
}

std::string formatExact(int64_t ns) {
  const bool negative = ns < 0;
  // |INT64_MIN| does not fit: such a time is not a real offset anyway.
  const uint64_t a = negative ? static_cast<uint64_t>(-(ns + 1)) + 1 : static_cast<uint64_t>(ns);
  char frac[16];
  std::snprintf(frac, sizeof frac, "%09llu", static_cast<unsigned long long>(a % 1'000'000'000ULL));
  std::string out = negative ? "-" : "";
  out += std::to_string(a / 1'000'000'000ULL) + ".";
  out.append(frac, 3).append(" ").append(frac + 3, 3).append(" ").append(frac + 6, 3);
  return out + " s";
}

std::string formatTick(int64_t ns, int64_t spacing, int64_t magnitude) {
  const Unit u = unitFor(std::max<int64_t>(std::llabs(magnitude), std::max<int64_t>(spacing, 1)));
  int decimals = 0;
  for (double s = static_cast<double>(spacing) / u.scale; decimals < 9 && std::fabs(s - std::round(s)) > 1e-9;
       s *= 10)
    ++decimals;
  return format(static_cast<double>(ns) / u.scale, decimals, u.name);
}

std::optional<int64_t> parseDuration(std::string_view text) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  size_t n = 0;
  while (n < text.size() && (std::isdigit(static_cast<unsigned char>(text[n])) || text[n] == '.' ||
                             (n == 0 && (text[n] == '-' || text[n] == '+'))))
    ++n;
  if (n == 0) return std::nullopt;
  const std::string number(text.substr(0, n));
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size()) return std::nullopt;
  const std::string_view unit = trim(text.substr(n));
  double scale = 0;
  if (unit.empty() || unit == "ns")
    scale = 1;
  else if (unit == "us" || unit == "µs")
    scale = 1e3;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "s")
    scale = 1e9;
  else
    return std::nullopt;
  // Checked before the conversion: llround of a value beyond int64 is undefined.
  const double ns = value * scale;
  if (!(std::fabs(ns) < static_cast<double>(kMaxDuration))) return std::nullopt;
  return std::llround(ns);
}

std::optional<TimeRange> parseTimeRange(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto a = parseDuration(text.substr(0, colon)), b = parseDuration(text.substr(colon + 1));
  if (!a || !b || *b <= *a) return std::nullopt;
  return TimeRange{*a, *b};
}

int64_t niceStep(double minSpacing) {
  int64_t base = 1;
  while (true) {
    for (int64_t f : {1, 2, 5}) {
      if (static_cast<double>(base * f) >= minSpacing) return base * f;
    }
    if (base > INT64_MAX / 100) return base * 10;
    base *= 10;
  }
}

std::vector<RulerTick> rulerTicks(const TimeMapping& m, int64_t origin, double minMajorPx,
                                  int64_t* majorStep) {
  std::vector<RulerTick> ticks;
  const int64_t major = niceStep(minMajorPx * m.nsPerPixel());
  if (majorStep) *majorStep = major;
  int64_t leading = major;
  while (leading >= 10 && leading % 10 == 0) leading /= 10;
  const bool isTwo = leading == 2;
  const int64_t minor = std::max<int64_t>(major / (isTwo ? 2 : 5), 1);
  const int64_t rel0 = m.range.start - origin;
  int64_t k = rel0 >= 0 ? rel0 / minor : -((-rel0 + minor - 1) / minor);
  for (;; ++k) {
    const int64_t t = origin + k * minor;
    if (t > m.range.end) break;
    if (t < m.range.start) continue;
    ticks.push_back({m.toX(t), t, (k * minor) % major == 0});
  }
  return ticks;
}

}  // namespace moescope::ui
