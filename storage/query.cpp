#include "storage/query.h"

#include <chrono>

#include "storage/sqlite_util.h"

namespace moescope::storage {

namespace {

using Clock = std::chrono::steady_clock;

// SQLite calls this every few thousand virtual-machine steps; non-zero interrupts the statement.
int pastDeadline(void* deadline) {
  return Clock::now() > *static_cast<Clock::time_point*>(deadline) ? 1 : 0;
}

}  // namespace

QueryResult runQuery(const std::filesystem::path& file, std::string_view sql, size_t maxRows, int timeoutMs) {
  sqlite::Db db(file, SQLITE_OPEN_READONLY);
  db.exec("PRAGMA query_only = 1", "making the connection read-only");
  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  sqlite3_progress_handler(db.get(), 10'000, pastDeadline, &deadline);
  // One statement: compile it, and refuse text after it (other than spaces and semicolons).
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  const std::string text(sql);
  const int rc = sqlite3_prepare_v2(db.get(), text.c_str(), static_cast<int>(text.size()), &raw, &tail);
  if (rc != SQLITE_OK) {
    const std::string message = sqlite3_errmsg(db.get());
    sqlite3_finalize(raw);
    throw StorageError(message);
  }
  struct Finalize {
    sqlite3_stmt* st;
    ~Finalize() { sqlite3_finalize(st); }
  } finalize{raw};
  for (const char* p = tail; p && *p; ++p) {
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';')
      throw StorageError("one statement at a time: remove what follows the first");
  }
  QueryResult out;
  if (!raw) return out;  // only spaces or a comment
  const int n = sqlite3_column_count(raw);
  for (int c = 0; c < n; ++c) {
    const char* name = sqlite3_column_name(raw, c);
    out.columns.emplace_back(name ? name : "");
  }
  while (true) {
    const int step = sqlite3_step(raw);
    if (step == SQLITE_DONE) break;
    if (step == SQLITE_INTERRUPT)
      throw StorageError("the query ran longer than " + std::to_string(timeoutMs / 1000) +
                         " s and was stopped");
    if (step != SQLITE_ROW) throw StorageError(sqlite3_errmsg(db.get()));
    if (out.rows.size() >= maxRows) {
      out.truncated = true;
      break;
    }
    std::vector<std::string> row;
    row.reserve(static_cast<size_t>(n));
    for (int c = 0; c < n; ++c) {
      if (sqlite3_column_type(raw, c) == SQLITE_NULL) {
        row.emplace_back("NULL");
      } else {
        const auto* v = reinterpret_cast<const char*>(sqlite3_column_text(raw, c));
        row.emplace_back(v ? std::string(v, static_cast<size_t>(sqlite3_column_bytes(raw, c)))
                           : std::string());
      }
    }
    out.rows.push_back(std::move(row));
  }
  return out;
}

}  // namespace moescope::storage
