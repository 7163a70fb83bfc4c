// Small helpers the text reports share (stats, compare, the MoE section): printf-style formatting into
// a std::string, nanoseconds as milliseconds, bytes as MiB or GiB.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace moescope::storage::report_text {

// One line of a report; longer output is cut at 255 characters (the reports' lines are far shorter).
inline std::string format(const char* fmt, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

inline double ms(int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

// Memory in GiB from 1 GiB on, else in MiB, two decimals: "17.32 GiB", "3.00 MiB".
inline std::string memory(double bytes) {
  constexpr double kMiB = 1 << 20, kGiB = 1 << 30;
  return bytes >= kGiB ? format("%.2f GiB", bytes / kGiB) : format("%.2f MiB", bytes / kMiB);
}

}  // namespace moescope::storage::report_text
