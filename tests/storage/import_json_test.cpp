// The streaming tokenizer and the trace input under it: tokens as nlohmann-json sees them for random
// documents read through windows small enough that every token straddles a refill, escapes, numbers as
// Kineto writes time, gzip (whole, several members, truncated, corrupt) and every kind of non-JSON.
#include "storage/import_json.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "storage/import_error.h"
#include "storage/import_input.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

using Token = JsonReader::Token;

std::filesystem::path writeFile(const moescope::testing::TempRunFile& dir, const std::string& name,
                                const std::string& text) {
  const auto path = dir.sibling(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::filesystem::path writeGzip(const moescope::testing::TempRunFile& dir, const std::string& name,
                                const std::vector<std::string>& members) {
  const auto path = dir.sibling(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc).close();
  for (const std::string& m : members) {
    gzFile f = gzopen(path.c_str(), "ab");
    gzwrite(f, m.data(), static_cast<unsigned>(m.size()));
    gzclose(f);
  }
  return path;
}

// The token stream as text: "{ k:a [ n:1 s:x t f z ] }".
std::string tokens(const std::filesystem::path& path, size_t window) {
  auto in = TraceInput::open(path);
  JsonReader r(*in, window);
  std::string out;
  for (Token t = r.next(); t != Token::End; t = r.next()) {
    switch (t) {
      case Token::ObjectBegin:
        out += "{ ";
        break;
      case Token::ObjectEnd:
        out += "} ";
        break;
      case Token::ArrayBegin:
        out += "[ ";
        break;
      case Token::ArrayEnd:
        out += "] ";
        break;
      case Token::Key:
        out += "k:" + std::string(r.text()) + " ";
        break;
      case Token::String:
        out += "s:" + std::string(r.text()) + " ";
        break;
      case Token::Number:
        out += "n:" + std::string(r.text()) + " ";
        break;
      case Token::True:
        out += "t ";
        break;
      case Token::False:
        out += "f ";
        break;
      case Token::Null:
        out += "z ";
        break;
      case Token::End:
        break;
    }
  }
  return out;
}

// The same stream from nlohmann-json's SAX interface, numbers as the tokenizer keeps them (as written).
struct SaxTokens : nlohmann::json_sax<nlohmann::json> {
  std::string out;
  bool null() override { return out += "z ", true; }
  bool boolean(bool v) override { return out += v ? "t " : "f ", true; }
  bool number_integer(number_integer_t v) override { return out += "n:" + std::to_string(v) + " ", true; }
  bool number_unsigned(number_unsigned_t v) override { return out += "n:" + std::to_string(v) + " ", true; }
  bool number_float(number_float_t, const string_t& s) override { return out += "n:" + s + " ", true; }
  bool string(string_t& s) override { return out += "s:" + s + " ", true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return out += "{ ", true; }
  bool key(string_t& s) override { return out += "k:" + s + " ", true; }
  bool end_object() override { return out += "} ", true; }
  bool start_array(std::size_t) override { return out += "[ ", true; }
  bool end_array() override { return out += "] ", true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

nlohmann::json randomValue(std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 3 ? 4 : 6);
  // Whole UTF-8 characters, with everything JSON escapes and the structure characters.
  static const std::vector<std::string> chars = {"a", "b", " ", "\"", "\\", "/", "\n", "\t", "\x01", "z",
                                                 "é", "😀", "Ω", "{",  "}",  "[", "]",  ",",  ":"};
  auto text = [&] {
    std::string s;
    const int n = std::uniform_int_distribution<int>(0, 120)(rng);
    for (int i = 0; i < n; ++i) s += chars[std::uniform_int_distribution<size_t>(0, chars.size() - 1)(rng)];
    return s;
  };
  switch (kind(rng)) {
    case 0:
      return nullptr;
    case 1:
      return std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    case 2:
      return std::uniform_int_distribution<int64_t>(-1'000'000'000'000, 1'000'000'000'000)(rng);
    case 3:
      return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
    case 4:
      return text();
    case 5: {
      nlohmann::json a = nlohmann::json::array();
      const int n = std::uniform_int_distribution<int>(0, 6)(rng);
      for (int i = 0; i < n; ++i) a.push_back(randomValue(rng, depth + 1));
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      const int n = std::uniform_int_distribution<int>(0, 6)(rng);
      for (int i = 0; i < n; ++i) o[text()] = randomValue(rng, depth + 1);
      return o;
    }
  }
}

TEST(ImportJson, RandomDocumentsThroughSmallWindowsGiveNlohmannsTokens) {
  moescope::testing::TempRunFile dir;
  std::mt19937 rng(7);
  for (int doc = 0; doc < 60; ++doc) {
    nlohmann::json j = nlohmann::json::object();
    for (const char* key : {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}) j[key] = randomValue(rng, 0);
    // Pretty-printed half of the time (Kineto indents), compact otherwise.
    const std::string text = doc % 2 ? j.dump(2) : j.dump();
    SaxTokens expected;
    ASSERT_TRUE(nlohmann::json::sax_parse(text, &expected));
    const auto path = writeFile(dir, "doc.json", text);
    for (size_t window : {64, 97, 1 << 16})
      EXPECT_EQ(tokens(path, window), expected.out) << "window " << window;
    const auto gz = writeGzip(dir, "doc.json.gz", {text});
    EXPECT_EQ(tokens(gz, 64), expected.out);
  }
}

TEST(ImportJson, EscapesAndLongStrings) {
  moescope::testing::TempRunFile dir;
  const std::string longText(5000, 'x');
  const auto path = writeFile(
      dir, "e.json", R"({"a\"b": "c\\d\/e\n\u00e9\ud83d\ude00", "long": ")" + longText + R"(", "e": "\\"})");
  EXPECT_EQ(tokens(path, 64), "{ k:a\"b s:c\\d/e\né😀 k:long s:" + longText + " k:e s:\\ } ");
}

TEST(ImportJson, SkipPassesOverAWholeValue) {
  moescope::testing::TempRunFile dir;
  const auto path = writeFile(dir, "s.json", R"({"skip": {"a": [1, {"b": [2, 3]}], "c": "]}"}, "keep": 4})");
  auto in = TraceInput::open(path);
  JsonReader r(*in, 64);
  ASSERT_EQ(r.next(), Token::ObjectBegin);
  ASSERT_EQ(r.next(), Token::Key);
  r.skip(r.next());
  ASSERT_EQ(r.next(), Token::Key);
  EXPECT_EQ(r.text(), "keep");
  ASSERT_EQ(r.next(), Token::Number);
  EXPECT_EQ(r.text(), "4");
  EXPECT_EQ(r.depth(), 1u);
  EXPECT_EQ(r.next(), Token::ObjectEnd);
  EXPECT_EQ(r.next(), Token::End);
}

std::string errorOf(const moescope::testing::TempRunFile& dir, const std::string& text) {
  const auto path = writeFile(dir, "bad.json", text);
  try {
    tokens(path, 64);
  } catch (const ImportError& e) {
    const std::string what = e.what();
    return what.substr(what.find(": ") + 2);
  }
  return "(no error)";
}

TEST(ImportJson, NotJsonIsOneLineWithTheByte) {
  moescope::testing::TempRunFile dir;
  EXPECT_EQ(errorOf(dir, ""), "not JSON (byte 0: the file is empty)");
  EXPECT_EQ(errorOf(dir, "hello"), "not JSON (byte 0: unexpected character 'h')");
  EXPECT_EQ(errorOf(dir, "{\"a\": [1, 2"), "not JSON (byte 11: the file ends inside the document)");
  EXPECT_EQ(errorOf(dir, "{\"a\": 1} x"), "not JSON (byte 9: text after the end of the document)");
  EXPECT_EQ(errorOf(dir, "{\"a\": 1 \"b\": 2}"), "not JSON (byte 8: expected ',' or '}')");
  EXPECT_EQ(errorOf(dir, "[1 2]"), "not JSON (byte 3: expected ',' or ']')");
  EXPECT_EQ(errorOf(dir, "{\"a\" 1}"), "not JSON (byte 5: expected ':' after a key)");
  EXPECT_EQ(errorOf(dir, "{a: 1}"), "not JSON (byte 1: expected a key in quotes)");
  EXPECT_EQ(errorOf(dir, "{\"a\": \"unterminated"), "not JSON (byte 6: the file ends inside a string)");
  EXPECT_EQ(errorOf(dir, "[\"\\q\"]"), "not JSON (byte 1: a bad escape '\\q')");
  EXPECT_EQ(errorOf(dir, "[tru]"), "not JSON (byte 1: unexpected character 't')");
  EXPECT_EQ(errorOf(dir, "[-x]"), "not JSON (byte 1: a malformed number)");
  EXPECT_EQ(errorOf(dir, "[1,]"), "not JSON (byte 3: unexpected character ']')");
}

TEST(ImportJson, GzipMembersTruncationAndCorruption) {
  moescope::testing::TempRunFile dir;
  // Two gzip members back to back read as one text.
  EXPECT_EQ(tokens(writeGzip(dir, "two.json.gz", {"[1, ", "2]"}), 64), "[ n:1 n:2 ] ");

  std::string doc = "{\"traceEvents\": [";
  for (int i = 0; i < 2000; ++i) doc += "{\"name\": \"event " + std::to_string(i) + "\"},";
  doc += "{}]}";
  const auto gz = writeGzip(dir, "whole.json.gz", {doc});
  std::string bytes;
  {
    std::ifstream in(gz, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto cut = writeFile(dir, "cut.json.gz", bytes.substr(0, bytes.size() / 2));
  try {
    tokens(cut, 1 << 16);
    FAIL() << "a truncated gzip file read whole";
  } catch (const ImportError& e) {
    EXPECT_EQ(std::string(e.what()),
              cut.string() + ": truncated gzip data (the file ends inside the compressed stream)");
  }
  std::string corrupt = bytes;
  for (size_t i = 20; i < 60; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  try {
    tokens(writeFile(dir, "corrupt.json.gz", corrupt), 1 << 16);
    FAIL() << "corrupt gzip data read";
  } catch (const ImportError& e) {
    EXPECT_NE(std::string(e.what()).find(": corrupt gzip data ("), std::string::npos) << e.what();
  }
}

TEST(ImportJson, InputProgressAndMissingFiles) {
  moescope::testing::TempRunFile dir;
  const auto path = writeFile(dir, "p.json", "[1, 2, 3]");
  auto in = TraceInput::open(path);
  EXPECT_EQ(in->fileSize(), 9u);
  EXPECT_FALSE(in->compressed());
  JsonReader r(*in);
  while (r.next() != Token::End) {
  }
  EXPECT_EQ(in->fileOffset(), 9u);
  EXPECT_THROW(TraceInput::open(dir.sibling("missing.json")), ImportError);
  try {
    TraceInput::open(dir.sibling(""));
  } catch (const ImportError& e) {
    EXPECT_NE(std::string(e.what()).find("is a folder"), std::string::npos) << e.what();
  }
}

TEST(ImportJson, MicrosToNanos) {
  int64_t ns = 0;
  ASSERT_TRUE(jsonMicrosToNanos("1234.567", ns));
  EXPECT_EQ(ns, 1234567);
  ASSERT_TRUE(jsonMicrosToNanos("1666149715033200", ns));  // epoch microseconds, as older Kineto wrote
  EXPECT_EQ(ns, 1666149715033200000);
  ASSERT_TRUE(jsonMicrosToNanos("0.5", ns));
  EXPECT_EQ(ns, 500);
  ASSERT_TRUE(jsonMicrosToNanos("2.0005", ns));
  EXPECT_EQ(ns, 2001);
  ASSERT_TRUE(jsonMicrosToNanos("-3.25", ns));
  EXPECT_EQ(ns, -3250);
  ASSERT_TRUE(jsonMicrosToNanos("1.5e3", ns));
  EXPECT_EQ(ns, 1500000);
  EXPECT_FALSE(jsonMicrosToNanos("99999999999999999", ns));  // beyond int64 nanoseconds
  EXPECT_FALSE(jsonMicrosToNanos("1.", ns));
  EXPECT_FALSE(jsonMicrosToNanos("abc", ns));
  int64_t i = 0;
  EXPECT_TRUE(jsonInteger("-42", i));
  EXPECT_EQ(i, -42);
  EXPECT_FALSE(jsonInteger("4.2", i));
}

}  // namespace
}  // namespace moescope::storage
