#include "storage/text_writer.h"

#include <gtest/gtest.h>

#include <sstream>

namespace moescope::storage {
namespace {

std::string written(auto fill) {
  std::ostringstream out;
  {
    TextWriter w(out);
    fill(w);
  }
  return out.str();
}

TEST(TextWriter, MicrosecondsKeepEveryNanosecond) {
  EXPECT_EQ(written([](TextWriter& w) { w.micros(1'234'567); }), "1234.567");
  EXPECT_EQ(written([](TextWriter& w) { w.micros(5); }), "0.005");
  EXPECT_EQ(written([](TextWriter& w) { w.micros(-1500); }), "-1.500");
}

TEST(TextWriter, JsonAndCsvEscaping) {
  EXPECT_EQ(written([](TextWriter& w) { w.jsonString("a\"b\\c\n\x01"); }), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(written([](TextWriter& w) { w.csvField("plain"); }), "plain");
  EXPECT_EQ(written([](TextWriter& w) { w.csvField("x,\"y\""); }), "\"x,\"\"y\"\"\"");
}

TEST(TextWriter, WritesMoreThanItsBuffer) {
  const std::string big(3 << 20, 'x');
  EXPECT_EQ(written([&](TextWriter& w) { w.raw("<").raw(big).integer(-42); }), "<" + big + "-42");
}

}  // namespace
}  // namespace moescope::storage
