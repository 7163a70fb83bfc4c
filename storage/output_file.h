// Outputs that never destroy a user's file, written once for every command (export, generate, train's
// run file, metrics and checkpoint):
//
// - An output is a regular file (or a new name) in a folder that exists. A folder, a symbolic link, a
//   device node, a FIFO or a socket is refused, never replaced by a file.
// - An output is never one of the command's inputs, nor another of its outputs: paths are compared
//   resolved (symbolic links followed) and, for files that exist, by device and inode (hard links).
// - An existing file is replaced only with `force` (--force), and only once the new one is complete:
//   the content goes to a temporary file beside the target (same folder, so the rename is atomic),
//   named uniquely (`.NAME.XXXXXX.partial`, so parallel writers never share one), and renamed over
//   the target by commit(). Every exit path that can be caught removes it: the destructor, exceptions,
//   and SIGINT, SIGTERM and SIGHUP through removeTemporaryFilesOnSignals().
// - A second writer is refused: a file being replaced is locked (flock) while its successor is
//   written, and a new run file is created already locked, so a concurrent writer of the same name
//   finds either the name taken or the lock held.
//
// Problems found when an output is opened are OutputRefused (bad input: exit 2 in the CLI); a write
// that fails later (a full disk) is a StorageError.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>

#include "storage/storage_error.h"

namespace moescope::storage {

class OutputRefused : public StorageError {
 public:
  explicit OutputRefused(const std::string& message) : StorageError(message) {}
};

struct OutputPath {
  std::string option;  // how the command names it in messages: "--out", "-o"
  std::filesystem::path path;
};

// Refuses an output that is empty, "-", one of `inputs`, or another of `outputs` (same resolved path,
// or the same file through a hard link). Called before any work starts.
void checkOutputs(std::span<const OutputPath> outputs, std::span<const std::filesystem::path> inputs);

class OutputFile {
 public:
  enum class Kind {
    // Written to a temporary file and renamed into place by commit().
    Plain,
    // A run file (SQLite), written as Plain, its -wal, -shm and -journal files cleaned with it.
    RunFile,
    // A run file that a reader (the GUI) watches while it grows: a new name is created empty and
    // locked and written where it is, and it stays (with what was written) however the run ends. An
    // existing run (force) is replaced as RunFile.
    GrowingRunFile,
  };
  // Checks the target (see the file comment) and makes the file to write: the temporary file, or the
  // new run file. OutputRefused names the option and the problem.
  static std::unique_ptr<OutputFile> open(const OutputPath& output, bool force, Kind kind = Kind::Plain);
  // Not committed: the temporary file is removed (a new run file is kept once it holds anything).
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  const std::filesystem::path& target() const { return target_; }
  // Where to write: the temporary file, or the target itself for a new run file.
  const std::filesystem::path& writePath() const { return write_; }
  bool inPlace() const { return write_ == target_; }
  bool runFile() const { return kind_ != Kind::Plain; }
  // Makes the written file the target: syncs it to the disk and renames it over the target. Throws
  // StorageError (the temporary file removed) when that fails.
  void commit();
  // Removes what was written (not a new run file that holds anything). Later calls do nothing.
  void discard();

 private:
  OutputFile() = default;
  void removeTemporary();
  std::filesystem::path target_, write_;
  Kind kind_ = Kind::Plain;
  int lock_ = -1;       // flock'ed descriptor of the target (existing or new), -1 when none
  int temporary_ = -1;  // descriptor of the temporary file, for fsync
  int slot_ = -1;       // its entry in the list that signal handlers clean
  bool done_ = false;
};

// Disk space held back for a writer's last words on a full disk (a run file's status "failed"): a
// hidden file of `bytes` allocated beside `near`, given back by release(), the destructor or the
// signal handlers. Where even that cannot be made, there is none and nothing fails.
class SpaceReserve {
 public:
  SpaceReserve(const std::filesystem::path& near, int64_t bytes);
  ~SpaceReserve();
  SpaceReserve(const SpaceReserve&) = delete;
  SpaceReserve& operator=(const SpaceReserve&) = delete;
  void release();
  bool held() const { return slot_ >= 0 || !path_.empty(); }

 private:
  std::filesystem::path path_;
  int slot_ = -1;
};

// Writes a whole Plain output through `write` and commits it; on any failure (a stream error, an
// exception from `write`) nothing is left and StorageError is thrown.
void writeOutput(OutputFile& file, const std::function<void(std::ostream&)>& write);

// Removes every temporary file not yet committed or discarded (and SQLite's files beside a run's).
// Async-signal-safe: only unlink(2) on paths kept in static storage.
void removeTemporaryFiles() noexcept;
// Handlers for SIGINT, SIGTERM and SIGHUP that remove the temporary files and then end the process
// as the signal would have (so the exit status still tells which signal it was).
void removeTemporaryFilesOnSignals();

}  // namespace moescope::storage
