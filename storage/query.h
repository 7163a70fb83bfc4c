// A read-only SQL query on a run file, for the GUI's query panel (Perfetto's query page): the run file
// is SQLite, so any question its tables can answer is one SELECT away. The file is opened read-only
// and the connection set to query_only, so no statement can change it; one statement runs, and a
// statement that returns no rows (a PRAGMA, say) gives an empty table.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "storage/storage_error.h"

namespace moescope::storage {

struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // each value as text; NULL as "NULL"
  bool truncated = false;                      // the statement had more than maxRows rows
  bool operator==(const QueryResult&) const = default;
};

// Throws StorageError with SQLite's message for a statement that does not compile or run (a write
// among them: "attempt to write a readonly database"), for more than one statement, or for one that
// runs longer than timeoutMs (a join of two large tables can run for hours).
QueryResult runQuery(const std::filesystem::path& file, std::string_view sql, size_t maxRows = 100'000,
                     int timeoutMs = 10'000);

}  // namespace moescope::storage
