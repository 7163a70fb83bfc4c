// The run file an import writes, under a unique temporary name beside the final one until it is whole:
// a failed, cancelled or interrupted import leaves nothing under the final name and removes its
// temporary file (with SQLite's -wal and -shm). One small class so that the project's shared
// safe-output helper can take its place.
#pragma once

#include <filesystem>

namespace moescope::storage {

class ImportOutput {
 public:
  explicit ImportOutput(std::filesystem::path final);
  ~ImportOutput();
  ImportOutput(const ImportOutput&) = delete;
  ImportOutput& operator=(const ImportOutput&) = delete;

  const std::filesystem::path& temporary() const { return temporary_; }
  const std::filesystem::path& final() const { return final_; }
  // Moves the temporary file into place (replacing a file of that name). Throws StorageError.
  void commit();

 private:
  std::filesystem::path final_, temporary_;
  bool committed_ = false;
};

}  // namespace moescope::storage
