#include "mutator.h"

#include <cmath>
#include <limits>

namespace moescope::fuzz {

int64_t Mutator::interestingInt() {
  static const std::vector<int64_t> values = {
      0,
      1,
      -1,
      2,
      7,
      13,
      14,  // the category count: one past the last
      200,
      255,
      256,
      -128,
      32767,
      32768,
      65535,
      65536,
      std::numeric_limits<int32_t>::max(),
      int64_t{std::numeric_limits<int32_t>::max()} + 1,
      std::numeric_limits<int32_t>::min(),
      int64_t{std::numeric_limits<int32_t>::min()} - 1,
      std::numeric_limits<uint32_t>::max(),
      int64_t{1} << 32,
      4000000000,
      int64_t{1} << 53,
      int64_t{1} << 62,
      (int64_t{1} << 62) + 1,
      std::numeric_limits<int64_t>::max(),
      std::numeric_limits<int64_t>::max() - 1,
      std::numeric_limits<int64_t>::min(),
      std::numeric_limits<int64_t>::min() + 1,
  };
  if (chance(0.2)) return static_cast<int64_t>(next());  // anything at all
  return pick(values);
}

double Mutator::interestingReal() {
  static const std::vector<double> values = {0.0,
                                             -0.0,
                                             -1.0,
                                             1e-320,
                                             1e308,
                                             -1e308,
                                             std::numeric_limits<double>::infinity(),
                                             -std::numeric_limits<double>::infinity(),
                                             std::numeric_limits<double>::quiet_NaN(),
                                             9.3e18,
                                             0.5};
  return pick(values);
}

std::string Mutator::interestingText() {
  switch (below(8)) {
    case 0:
      return "";
    case 1:
      return "\xFF\xFE broken \xC3";  // invalid UTF-8 and a cut sequence
    case 2:
      return std::string("nul\0inside", 10);
    case 3:
      return std::string(1 << 20, 'x');  // a megabyte
    case 4:
      return "\"quote\\backslash,comma\nnewline\r\t\x01";
    case 5:
      return "\xED\xA0\x80 surrogate \xF4\x90\x80\x80 beyond";
    case 6:
      return "compute.attention";
    default:
      return std::to_string(interestingInt());
  }
}

std::string Mutator::mutateBytes(std::string bytes, std::string& what) {
  const size_t count = 1 + below(3);
  for (size_t k = 0; k < count; ++k) {
    if (bytes.empty()) {
      bytes = interestingText();
      what += " [empty: filled]";
      continue;
    }
    switch (below(6)) {
      case 0: {  // truncation
        const size_t at = below(bytes.size());
        bytes.resize(at);
        what += " [truncated at " + std::to_string(at) + "]";
        break;
      }
      case 1: {  // bit flips
        const size_t flips = 1 + below(8);
        for (size_t i = 0; i < flips; ++i) bytes[below(bytes.size())] ^= static_cast<char>(1u << below(8));
        what += " [" + std::to_string(flips) + " bit flips]";
        break;
      }
      case 2: {  // a range overwritten with random bytes
        const size_t at = below(bytes.size());
        const size_t n = std::min(bytes.size() - at, 1 + below(64));
        for (size_t i = 0; i < n; ++i) bytes[at + i] = static_cast<char>(next());
        what += " [" + std::to_string(n) + " random bytes at " + std::to_string(at) + "]";
        break;
      }
      case 3: {  // an interesting integer written over 8 bytes (little-endian)
        const size_t at = below(bytes.size());
        const auto v = static_cast<uint64_t>(interestingInt());
        for (size_t i = 0; i < 8 && at + i < bytes.size(); ++i)
          bytes[at + i] = static_cast<char>(v >> (8 * i));
        what += " [integer " + std::to_string(static_cast<int64_t>(v)) + " at " + std::to_string(at) + "]";
        break;
      }
      case 4: {  // a range repeated
        const size_t at = below(bytes.size());
        const size_t n = std::min(bytes.size() - at, 1 + below(256));
        bytes.insert(at, bytes.substr(at, n));
        what += " [" + std::to_string(n) + " bytes repeated at " + std::to_string(at) + "]";
        break;
      }
      default: {  // a range removed
        const size_t at = below(bytes.size());
        const size_t n = std::min(bytes.size() - at, 1 + below(256));
        bytes.erase(at, n);
        what += " [" + std::to_string(n) + " bytes removed at " + std::to_string(at) + "]";
        break;
      }
    }
  }
  return bytes;
}

}  // namespace moescope::fuzz
