// Text from a file made safe to pass on: every name, label and value a run file (or an import) holds
// goes through validUtf8 as it is read, so strict UTF-8 decoders (JSON parsers, nlohmann-json's dump,
// Qt) never meet a broken sequence and no NUL byte reaches a CSV cell or a C string.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace moescope::storage {

// The length of the valid UTF-8 sequence (shortest form, no surrogates, at most U+10FFFF) that starts
// text[i], or 0 when none does. ASCII (NUL included) is 1.
size_t utf8SequenceLength(std::string_view text, size_t i);

// The text with each invalid byte sequence and each NUL replaced by U+FFFD (the replacement character).
// Valid text comes back unchanged (and without a copy's worth of work beyond one scan).
std::string validUtf8(std::string_view text);

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

}  // namespace moescope::storage
