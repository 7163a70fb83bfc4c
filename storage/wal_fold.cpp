#include "storage/wal_fold.h"

#include "storage/sqlite_util.h"
#include "storage/trace_model.h"

namespace moescope::storage {

bool foldWal(const std::filesystem::path& file, std::string* why) {
  auto no = [&](const std::string& reason) {
    if (why) *why = file.string() + ": " + reason;
    return false;
  };
  std::error_code ec;
  std::filesystem::path wal = file;
  wal += "-wal";
  if (!std::filesystem::exists(wal, ec)) return true;
  try {
    sqlite::Db db(file, SQLITE_OPEN_READWRITE);
    sqlite3_busy_timeout(db.get(), 200);
    if (db.queryInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'run'") > 0 &&
        db.queryInt("SELECT coalesce(max(status), -1) FROM run") == static_cast<int64_t>(RunStatus::Running))
      return no("the run is still being written");
    {
      sqlite::Stmt checkpoint(db, "PRAGMA wal_checkpoint(TRUNCATE)");
      if (!checkpoint.step() || checkpoint.int64(0) != 0) return no("another connection holds the file");
    }
    // The statement above is finished: the journal mode changes only outside any transaction.
    sqlite::Stmt journal(db, "PRAGMA journal_mode = DELETE");
    if (!journal.step() || journal.text(0) != "delete") return no("another connection holds the file");
  } catch (const StorageError& e) {
    return no(e.what());
  }
  return !std::filesystem::exists(wal, ec);
}

}  // namespace moescope::storage
