// Small helpers the text reports share (stats, compare, the MoE section): printf-style formatting into
// a std::string and nanoseconds as milliseconds.
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

}  // namespace moescope::storage::report_text
