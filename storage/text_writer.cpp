#include "storage/text_writer.h"

#include "storage/utf8.h"

namespace moescope::storage {

TextWriter& TextWriter::jsonString(std::string_view s) {
  put('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    switch (c) {
      case '"':
        raw("\\\"");
        break;
      case '\\':
        raw("\\\\");
        break;
      case '\n':
        raw("\\n");
        break;
      case '\r':
        raw("\\r");
        break;
      case '\t':
        raw("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          raw("\\u00");
          put(kHex[(c >> 4) & 0xf]);
          put(kHex[c & 0xf]);
        } else if (static_cast<unsigned char>(c) < 0x80) {
          put(c);
        } else if (const size_t n = utf8SequenceLength(s, i); n > 0) {
          raw(s.substr(i, n));
          i += n - 1;
        } else {
          raw("\\ufffd");  // strict JSON decoders refuse a broken UTF-8 sequence
        }
    }
  }
  return put('"');
}

TextWriter& TextWriter::csvField(std::string_view s) {
  // NUL bytes and broken UTF-8 become U+FFFD: a CSV reader stops at the one, chokes on the other.
  bool clean = true;
  for (size_t i = 0; i < s.size() && clean;) {
    const size_t n = utf8SequenceLength(s, i);
    clean = n > 0 && s[i] != '\0';
    i += n;
  }
  if (!clean) {
    const std::string fixed = validUtf8(s);
    return csvField(fixed);
  }
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return raw(s);
  put('"');
  for (char c : s) {
    if (c == '"') put('"');
    put(c);
  }
  return put('"');
}

}  // namespace moescope::storage
