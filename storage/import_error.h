// The typed error of the trace importers: a trace that cannot be imported (not JSON, not a Kineto
// trace, truncated, ranks of different runs). The message is one line naming the file and the problem;
// callers report it as bad input.
#pragma once

#include <stdexcept>
#include <string>

namespace moescope::storage {

class ImportError : public std::runtime_error {
 public:
  explicit ImportError(const std::string& message) : std::runtime_error(message) {}
};

// Thrown when the caller's cancel flag was raised; nothing has been written under the output's name.
class ImportCancelled : public std::runtime_error {
 public:
  ImportCancelled() : std::runtime_error("import cancelled") {}
};

}  // namespace moescope::storage
