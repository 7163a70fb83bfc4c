#include "storage/import_json.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "storage/import_error.h"
#include "storage/import_input.h"

namespace moescope::storage {
namespace {

// A token longer than this is refused rather than grown into (a corrupt file, not a trace).
constexpr size_t kMaxToken = size_t{1} << 30;

inline bool isSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
inline bool isNumberChar(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

JsonReader::JsonReader(TraceInput& input, size_t window) : input_(input), buf_(std::max<size_t>(window, 64)) {
  pos_ = end_ = buf_.data();
}

void JsonReader::fail(std::string_view what) const {
  throw ImportError(input_.name() + ": not JSON (byte " + std::to_string(offset()) + ": " +
                    std::string(what) + ")");
}

size_t JsonReader::fill(size_t need, const char* keep) {
  while (static_cast<size_t>(end_ - pos_) < need && !eof_) {
    // Move [keep, end) to the front, growing the window when the kept token fills it.
    const size_t kept = static_cast<size_t>(end_ - keep);
    const size_t keepOffset = static_cast<size_t>(keep - buf_.data());
    const size_t posOffset = static_cast<size_t>(pos_ - keep);
    if (kept == buf_.size()) {
      if (buf_.size() >= kMaxToken) fail("a token longer than 1 GiB");
      buf_.resize(buf_.size() * 2);
    } else if (keepOffset > 0) {
      std::memmove(buf_.data(), buf_.data() + keepOffset, kept);
    }
    consumed_ += keepOffset;
    char* base = buf_.data();
    const size_t got = input_.read(base + kept, buf_.size() - kept);
    if (got == 0) eof_ = true;
    pos_ = base + posOffset;
    end_ = base + kept + got;
    // The caller's pointers into the old window are rebased from pos_.
  }
  return static_cast<size_t>(end_ - pos_);
}

bool JsonReader::skipSpace() {
  for (;;) {
    while (pos_ < end_ && isSpace(*pos_)) ++pos_;
    if (pos_ < end_) return true;
    if (fill(1, pos_) == 0) return false;
  }
}

JsonReader::Token JsonReader::valueAfter(Token t) {
  expect_ = stack_.empty() ? Expect::Done : Expect::CommaOrEnd;
  return t;
}

JsonReader::Token JsonReader::next() {
  for (;;) {
    if (!skipSpace()) {
      if (expect_ == Expect::Done) return Token::End;
      fail(offset() == 0 ? "the file is empty" : "the file ends inside the document");
    }
    const char c = *pos_;
    switch (expect_) {
      case Expect::Done:
        fail("text after the end of the document");
      case Expect::Colon:
        if (c != ':') fail("expected ':' after a key");
        ++pos_;
        expect_ = Expect::Value;
        continue;
      case Expect::CommaOrEnd:
        if (c == ',') {
          ++pos_;
          expect_ = stack_.back() == '{' ? Expect::Key : Expect::Value;
          continue;
        }
        if (c == '}' && stack_.back() == '{') {
          ++pos_;
          stack_.pop_back();
          return valueAfter(Token::ObjectEnd);
        }
        if (c == ']' && stack_.back() == '[') {
          ++pos_;
          stack_.pop_back();
          return valueAfter(Token::ArrayEnd);
        }
        fail(stack_.back() == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
      case Expect::KeyOrObjectEnd:
        if (c == '}') {
          ++pos_;
          stack_.pop_back();
          return valueAfter(Token::ObjectEnd);
        }
        [[fallthrough]];
      case Expect::Key:
        if (c != '"') fail("expected a key in quotes");
        readString();
        expect_ = Expect::Colon;
        return Token::Key;
      case Expect::ValueOrArrayEnd:
        if (c == ']') {
          ++pos_;
          stack_.pop_back();
          return valueAfter(Token::ArrayEnd);
        }
        [[fallthrough]];
      case Expect::Value:
        switch (c) {
          case '{':
            ++pos_;
            stack_.push_back('{');
            expect_ = Expect::KeyOrObjectEnd;
            return Token::ObjectBegin;
          case '[':
            ++pos_;
            stack_.push_back('[');
            expect_ = Expect::ValueOrArrayEnd;
            return Token::ArrayBegin;
          case '"':
            readString();
            return valueAfter(Token::String);
          case 't':
            readLiteral("true");
            return valueAfter(Token::True);
          case 'f':
            readLiteral("false");
            return valueAfter(Token::False);
          case 'n':
            readLiteral("null");
            return valueAfter(Token::Null);
          default:
            if (c == '-' || (c >= '0' && c <= '9')) {
              readNumber();
              return valueAfter(Token::Number);
            }
            fail(std::string("unexpected character '") + c + "'");
        }
    }
  }
}

void JsonReader::skip(Token first) {
  if (first != Token::ObjectBegin && first != Token::ArrayBegin) return;
  const size_t depth = stack_.size() - 1;
  while (stack_.size() > depth) next();
}

void JsonReader::readString() {
  // pos_ is at the opening quote. Find the closing quote; a quote after an odd run of backslashes is
  // escaped.
  size_t scanned = 1;  // from pos_
  bool escapes = false;
  for (;;) {
    const char* from = pos_ + scanned;
    const char* quote = static_cast<const char*>(std::memchr(from, '"', static_cast<size_t>(end_ - from)));
    if (quote) {
      const char* slash =
          static_cast<const char*>(std::memchr(from, '\\', static_cast<size_t>(quote - from)));
      if (!slash) {
        if (!escapes) {
          text_ = std::string_view(pos_ + 1, static_cast<size_t>(quote - pos_ - 1));
          pos_ = quote + 1;
          return;
        }
        unescape(pos_ + 1, quote);
        pos_ = quote + 1;
        return;
      }
      escapes = true;
      // Step over the escape: the backslash and the character it escapes.
      scanned = static_cast<size_t>(slash + 2 - pos_);
      continue;
    }
    // No closing quote in the window. A backslash as its last byte escapes the first byte to come.
    const char* slash = static_cast<const char*>(std::memchr(from, '\\', static_cast<size_t>(end_ - from)));
    while (slash && slash + 1 < end_) {
      escapes = true;
      from = slash + 2;
      slash = from < end_
                  ? static_cast<const char*>(std::memchr(from, '\\', static_cast<size_t>(end_ - from)))
                  : nullptr;
    }
    scanned = static_cast<size_t>((slash ? slash : end_) - pos_);
    const size_t need = scanned + (slash ? 2 : 1);
    if (fill(need, pos_) < need) fail("the file ends inside a string");
  }
}

void JsonReader::unescape(const char* from, const char* to) {
  scratch_.clear();
  for (const char* p = from; p < to; ++p) {
    if (*p != '\\') {
      scratch_ += *p;
      continue;
    }
    if (++p >= to) fail("a string ends in a backslash");
    switch (*p) {
      case '"':
      case '\\':
      case '/':
        scratch_ += *p;
        break;
      case 'b':
        scratch_ += '\b';
        break;
      case 'f':
        scratch_ += '\f';
        break;
      case 'n':
        scratch_ += '\n';
        break;
      case 'r':
        scratch_ += '\r';
        break;
      case 't':
        scratch_ += '\t';
        break;
      case 'u': {
        auto hex4 = [&](const char* h) -> int32_t {
          if (to - h < 4) return -1;
          int32_t v = 0;
          for (int i = 0; i < 4; ++i) {
            const int d = hexValue(h[i]);
            if (d < 0) return -1;
            v = v * 16 + d;
          }
          return v;
        };
        int32_t cp = hex4(p + 1);
        if (cp < 0) fail("a bad \\u escape");
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && to - p > 6 && p[1] == '\\' && p[2] == 'u') {
          const int32_t low = hex4(p + 3);
          if (low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
          }
        }
        appendUtf8(scratch_, static_cast<uint32_t>(cp));
        break;
      }
      default:
        fail(std::string("a bad escape '\\") + *p + "'");
    }
  }
  text_ = scratch_;
}

void JsonReader::readNumber() {
  size_t n = 0;
  for (;;) {
    while (pos_ + n < end_ && isNumberChar(pos_[n])) ++n;
    if (pos_ + n < end_ || fill(n + 1, pos_) <= n) break;
  }
  text_ = std::string_view(pos_, n);
  // The grammar in short: an optional minus, then a digit.
  const size_t first = text_[0] == '-' ? 1 : 0;
  if (first >= n || text_[first] < '0' || text_[first] > '9') fail("a malformed number");
  pos_ += n;
}

void JsonReader::readLiteral(std::string_view word) {
  if (fill(word.size(), pos_) < word.size() || std::string_view(pos_, word.size()) != word)
    fail("unexpected character '" + std::string(1, *pos_) + "'");
  pos_ += word.size();
  text_ = word;
}

bool jsonInteger(std::string_view text, int64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool jsonMicrosToNanos(std::string_view text, int64_t& out) {
  // Fixed point: "123.4567" is 123456.7 ns, rounded to 123457; done in integers because the values are
  // epoch microseconds (16 digits) that a double cannot hold to the nanosecond.
  const char* p = text.data();
  const char* end = p + text.size();
  const bool negative = p < end && *p == '-';
  if (negative) ++p;
  int64_t whole = 0;
  const char* digits = p;
  while (p < end && *p >= '0' && *p <= '9') {
    if (whole > (INT64_MAX / 1000 - 9) / 10) return false;
    whole = whole * 10 + (*p++ - '0');
  }
  if (p == digits) return false;
  int64_t frac = 0;
  int fracDigits = 0;
  bool roundUp = false;
  if (p < end && *p == '.') {
    ++p;
    const char* fracStart = p;
    while (p < end && *p >= '0' && *p <= '9') {
      if (fracDigits < 3) {
        frac = frac * 10 + (*p - '0');
        ++fracDigits;
      } else if (p == fracStart + 3) {
        roundUp = *p >= '5';
      }
      ++p;
    }
    if (p == fracStart) return false;
  }
  if (p < end) {
    // An exponent: rare in traces; a double is exact enough for the small values written this way.
    if (*p != 'e' && *p != 'E') return false;
    double v = 0;
    const auto [e, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || e != text.data() + text.size() || !std::isfinite(v) || std::fabs(v) > 9.2e15)
      return false;
    out = static_cast<int64_t>(std::llround(v * 1000.0));
    return true;
  }
  while (fracDigits < 3) {
    frac *= 10;
    ++fracDigits;
  }
  out = whole * 1000 + frac + (roundUp ? 1 : 0);
  if (negative) out = -out;
  return true;
}

}  // namespace moescope::storage
