// The typed error of the storage layer: what went wrong and with which file.
#pragma once

#include <stdexcept>
#include <string>

namespace moescope::storage {

class StorageError : public std::runtime_error {
 public:
  // message: one line naming the file and the problem, e.g. "run.moescope: not a SQLite database".
  explicit StorageError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace moescope::storage
