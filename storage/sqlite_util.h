// Thin RAII wrappers over the SQLite C API for the storage layer. Every call that can fail is checked:
// a failure throws StorageError naming the run file, what was being done, SQLite's message and the
// source line that made the call (the wrappers take the caller's std::source_location, the way a
// check macro keeps __FILE__ and __LINE__). Internal to storage/.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <source_location>
#include <string>
#include <string_view>

#include "storage/storage_error.h"

namespace moescope::storage::sqlite {

// Throws StorageError "<file>: <what> (<sqlite message>) [<folder>/<source>:<line>]". Corruption
// codes are reported as a corrupt file, since that is what a user can act on.
[[noreturn]] void fail(sqlite3* db, int rc, const std::filesystem::path& file, const char* what,
                       const char* source, int line);

// One open connection; closes on destruction.
class Db {
 public:
  Db() = default;
  // flags: SQLITE_OPEN_READONLY or SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE. immutable (read-only
  // files): SQLite's immutable=1, which takes the file as it is, without locks, -shm or -wal.
  Db(const std::filesystem::path& file, int flags, bool immutable = false);
  ~Db();
  Db(Db&& other) noexcept : db_(other.db_), file_(std::move(other.file_)) { other.db_ = nullptr; }
  Db& operator=(Db&&) = delete;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* get() const { return db_; }
  const std::filesystem::path& file() const { return file_; }
  // Runs one or more statements that return no rows we need.
  void exec(const char* sql, const char* what, std::source_location at = std::source_location::current());
  // The first column of the first row of sql as an integer (0 when there is no row).
  int64_t queryInt(const char* sql, std::source_location at = std::source_location::current());
  // Registers a virtual-table module on this connection; the module must outlive it.
  void createModule(const char* name, const sqlite3_module* module, const char* what,
                    std::source_location at = std::source_location::current());

 private:
  sqlite3* db_ = nullptr;
  std::filesystem::path file_;
};

// A prepared statement; reset and reused.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Db& db, std::string_view sql, std::source_location at = std::source_location::current());
  ~Stmt();
  Stmt(Stmt&& other) noexcept : st_(other.st_), db_(other.db_) { other.st_ = nullptr; }
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  sqlite3_stmt* get() const { return st_; }
  // Binds by 1-based index.
  void bind(int i, int64_t v) { sqlite3_bind_int64(st_, i, v); }
  void bind(int i, int32_t v) { sqlite3_bind_int(st_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(st_, i, v); }
  void bindNull(int i) { sqlite3_bind_null(st_, i); }
  void bind(int i, std::string_view v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  // Passes a C++ object to a virtual table (sqlite3_value_pointer with the same type name); the
  // object must outlive the statement's next run.
  void bindPointer(int i, void* p, const char* type) { sqlite3_bind_pointer(st_, i, p, type, nullptr); }
  // Steps once; true while there is a row.
  bool step(std::source_location at = std::source_location::current());
  // Steps a statement that returns no rows, then resets it (bindings are kept; rebind what changes).
  void run(std::source_location at = std::source_location::current());
  void reset();
  int64_t int64(int col) const { return sqlite3_column_int64(st_, col); }
  int32_t int32(int col) const { return sqlite3_column_int(st_, col); }
  double real(int col) const { return sqlite3_column_double(st_, col); }
  std::string text(int col) const;
  int type(int col) const { return sqlite3_column_type(st_, col); }  // SQLITE_INTEGER, SQLITE_NULL, ...

 private:
  sqlite3_stmt* st_ = nullptr;
  const Db* db_ = nullptr;
};

}  // namespace moescope::storage::sqlite
