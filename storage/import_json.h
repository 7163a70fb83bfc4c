// A streaming JSON tokenizer (a pull parser): the importers walk a trace token by token through a
// fixed window of the file, so a trace of any size costs its window, never the whole document.
//
// Written here rather than taken from nlohmann-json, whose SAX parser (the library's streaming
// interface) parsed a Kineto-shaped trace at 104-136 MB/s on the development machine with a handler
// that does nothing (bench_import --sax; docs/bench-import.md): under the import's goal of 150 MB/s
// before a single event is kept. This tokenizer checks the same grammar (structure, commas, colons,
// string escapes, literals) and hands out strings and numbers as views into its window, copying only
// a string with escapes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moescope::storage {

class TraceInput;

class JsonReader {
 public:
  enum class Token : uint8_t {
    ObjectBegin,
    ObjectEnd,
    ArrayBegin,
    ArrayEnd,
    Key,
    String,
    Number,
    True,
    False,
    Null,
    End
  };

  explicit JsonReader(TraceInput& input, size_t window = size_t{1} << 20);

  // The next token. Key, String: text() is the unescaped text; Number: text() is the number as
  // written. text() stays valid until the next call. End comes once, after the top-level value.
  // Throws ImportError ("<file>: not JSON (byte N: <what>)") on anything that is not JSON, a file
  // that ends inside the document included.
  Token next();
  std::string_view text() const { return text_; }
  // Having just read `first` (a value's first token), skips the rest of that value.
  void skip(Token first);
  // Containers open around the current position: 0 at the top level.
  size_t depth() const { return stack_.size(); }
  // Bytes of text consumed.
  uint64_t offset() const { return consumed_ + static_cast<uint64_t>(pos_ - buf_.data()); }
  TraceInput& input() { return input_; }

  [[noreturn]] void fail(std::string_view what) const;

 private:
  enum class Expect : uint8_t { Value, ValueOrArrayEnd, KeyOrObjectEnd, Key, Colon, CommaOrEnd, Done };

  // Makes at least `need` bytes available from pos_ if the file has them, keeping [keep, end) in the
  // window (keep <= pos_); returns the bytes available from pos_.
  size_t fill(size_t need, const char* keep);
  bool skipSpace();  // false at the end of the file
  Token valueAfter(Token t);
  void readString();
  void readNumber();
  void readLiteral(std::string_view word);
  void unescape(const char* from, const char* to);

  TraceInput& input_;
  std::vector<char> buf_;
  const char* pos_ = nullptr;
  const char* end_ = nullptr;
  uint64_t consumed_ = 0;  // bytes before buf_'s start
  bool eof_ = false;
  Expect expect_ = Expect::Value;
  std::vector<char> stack_;  // '{' or '['
  std::string_view text_;
  std::string scratch_;  // a string's text when it had escapes
};

// A number's text as an integer; false if it is not one (a fraction, an exponent, out of range).
bool jsonInteger(std::string_view text, int64_t& out);
// A Kineto time stamp or duration in microseconds ("1234.567", "1666149715033200", "1.5e3") as
// integer nanoseconds, rounded to the nearest; false if it is not a number or is out of range.
bool jsonMicrosToNanos(std::string_view text, int64_t& out);

}  // namespace moescope::storage
