#include "storage/utf8.h"

#include <gtest/gtest.h>

namespace moescope::storage {
namespace {

const std::string kFffd(kReplacementCharacter);

TEST(Utf8, ValidTextIsKept) {
  for (const std::string s : {"", "attention", "schön", "注意力", "\xF0\x9F\x98\x80 emoji", "tab\tand\nline"})
    EXPECT_EQ(validUtf8(s), s) << s;
}

TEST(Utf8, EachBrokenSequenceAndEachNulBecomesAReplacementCharacter) {
  EXPECT_EQ(validUtf8("a\xFF"
                      "b"),
            "a" + kFffd + "b");
  EXPECT_EQ(validUtf8("cut \xC3"), "cut " + kFffd);                         // a sequence cut short
  EXPECT_EQ(validUtf8("\xC0\xAF"), kFffd + kFffd);                          // an overlong '/'
  EXPECT_EQ(validUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);              // a surrogate
  EXPECT_EQ(validUtf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // beyond U+10FFFF
  EXPECT_EQ(validUtf8(std::string("a\0b", 3)), "a" + kFffd + "b");
}

TEST(Utf8, SequenceLengths) {
  EXPECT_EQ(utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(utf8SequenceLength("\xC3\xB6", 0), 2u);
  EXPECT_EQ(utf8SequenceLength("\xE6\xB3\xA8", 0), 3u);
  EXPECT_EQ(utf8SequenceLength("\xF0\x9F\x98\x80", 0), 4u);
  EXPECT_EQ(utf8SequenceLength("\x80", 0), 0u);
  EXPECT_EQ(utf8SequenceLength("\xE6\xB3", 0), 0u);
}

}  // namespace
}  // namespace moescope::storage
