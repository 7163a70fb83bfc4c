#include "storage/text_writer.h"

namespace moescope::storage {

TextWriter& TextWriter::jsonString(std::string_view s) {
  put('"');
  for (char c : s) {
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
        } else {
          put(c);
        }
    }
  }
  return put('"');
}

TextWriter& TextWriter::csvField(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return raw(s);
  put('"');
  for (char c : s) {
    if (c == '"') put('"');
    put(c);
  }
  return put('"');
}

}  // namespace moescope::storage
