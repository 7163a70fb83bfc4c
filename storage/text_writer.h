// A buffered text writer for the exporters: appends to a 1 MiB buffer and hands full buffers to an
// ostream. Integers go through std::to_chars, nanosecond times become microseconds with exactly three
// decimals (no floating point), and strings are escaped for JSON or CSV. Internal to storage/.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string_view>
#include <vector>

namespace moescope::storage {

class TextWriter {
 public:
  explicit TextWriter(std::ostream& out) : out_(out) { buffer_.resize(kCapacity); }
  ~TextWriter() { flush(); }
  TextWriter(const TextWriter&) = delete;
  TextWriter& operator=(const TextWriter&) = delete;

  TextWriter& raw(std::string_view s) {
    reserve(s.size());
    std::copy(s.begin(), s.end(), buffer_.data() + used_);
    used_ += s.size();
    return *this;
  }
  TextWriter& put(char c) {
    reserve(1);
    buffer_[used_++] = c;
    return *this;
  }
  TextWriter& integer(int64_t v) {
    reserve(24);
    used_ = static_cast<size_t>(std::to_chars(buffer_.data() + used_, buffer_.data() + used_ + 24, v).ptr -
                                buffer_.data());
    return *this;
  }
  // A JSON number; NaN and infinities, which JSON lacks, as null.
  TextWriter& real(double v) {
    if (!std::isfinite(v)) return raw("null");
    reserve(32);
    used_ = static_cast<size_t>(std::to_chars(buffer_.data() + used_, buffer_.data() + used_ + 32, v).ptr -
                                buffer_.data());
    return *this;
  }
  // ns as microseconds, "1234.567".
  TextWriter& micros(int64_t ns) {
    if (ns < 0) put('-');
    // The magnitude as unsigned: -INT64_MIN does not fit int64.
    const uint64_t magnitude = ns < 0 ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
    reserve(24);
    used_ = static_cast<size_t>(
        std::to_chars(buffer_.data() + used_, buffer_.data() + used_ + 24, magnitude / 1000).ptr -
        buffer_.data());
    const auto frac = static_cast<int>(magnitude % 1000);
    reserve(4);
    buffer_[used_++] = '.';
    buffer_[used_++] = static_cast<char>('0' + frac / 100);
    buffer_[used_++] = static_cast<char>('0' + frac / 10 % 10);
    buffer_[used_++] = static_cast<char>('0' + frac % 10);
    return *this;
  }
  // A JSON string literal, with quotes.
  TextWriter& jsonString(std::string_view s);
  // A CSV field: quoted (and quotes doubled) only when it holds a comma, quote or line break.
  TextWriter& csvField(std::string_view s);
  void flush() {
    out_.write(buffer_.data(), static_cast<std::streamsize>(used_));
    used_ = 0;
  }

 private:
  static constexpr size_t kCapacity = 1 << 20;
  void reserve(size_t n) {
    if (used_ + n > buffer_.size()) {
      flush();
      if (n > buffer_.size()) buffer_.resize(n);
    }
  }
  std::ostream& out_;
  std::vector<char> buffer_;
  size_t used_ = 0;
};

}  // namespace moescope::storage
