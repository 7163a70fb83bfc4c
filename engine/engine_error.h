// The engine's error types. Library code throws; the CLI maps them to exit codes:
// InputError (bad config, layout, data or checkpoint, found before any work starts) is exit 2,
// anything else during a run is exit 1; Cancelled ends a run that Ctrl-C stopped.
#pragma once

#include <stdexcept>
#include <string>

namespace moescope::engine {

// Bad input: the message is one line naming the problem.
class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& what) : std::runtime_error(what) {}
};

// The run was cancelled (Ctrl-C) or a peer rank failed, so this rank stopped.
class Cancelled : public std::runtime_error {
 public:
  explicit Cancelled(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace moescope::engine
