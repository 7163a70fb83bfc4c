#include "storage/utf8.h"

namespace moescope::storage {

size_t utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  const unsigned c = byte(i);
  if (c < 0x80) return 1;
  auto continuation = [&](size_t k) { return (byte(k) & 0xC0) == 0x80; };
  // Unicode's table of well-formed sequences (The Unicode Standard, table 3-7).
  if (c >= 0xC2 && c <= 0xDF) return continuation(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned c1 = byte(i + 1);
    const bool first = c == 0xE0   ? (c1 >= 0xA0 && c1 <= 0xBF)
                       : c == 0xED ? (c1 >= 0x80 && c1 <= 0x9F)
                                   : continuation(i + 1);
    return first && continuation(i + 2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned c1 = byte(i + 1);
    const bool first = c == 0xF0   ? (c1 >= 0x90 && c1 <= 0xBF)
                       : c == 0xF4 ? (c1 >= 0x80 && c1 <= 0x8F)
                                   : continuation(i + 1);
    return first && continuation(i + 2) && continuation(i + 3) ? 4 : 0;
  }
  return 0;
}

std::string validUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {  // the common case: nothing to replace, one scan
    const size_t n = utf8SequenceLength(text, i);
    if (n == 0 || text[i] == '\0') break;
    i += n;
  }
  if (i == text.size()) return std::string(text);
  std::string out(text.substr(0, i));
  while (i < text.size()) {
    const size_t n = utf8SequenceLength(text, i);
    if (n == 0 || text[i] == '\0') {
      out.append(kReplacementCharacter);
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace moescope::storage
