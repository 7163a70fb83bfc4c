// A finished run is one file. A run file is written in WAL mode so that readers can follow it; when its
// writer finishes while a reader (the GUI following the run) still has it open, the writer cannot fold
// the WAL back, the reader cannot either (it is read-only), and the data stays in `<file>-wal`: copy
// the `.moescope` alone and the copy is an empty database. foldWal does it once the writer is done and
// the reader has let go: a checkpoint that truncates the WAL, then the rollback journal, so that no
// `-wal` or `-shm` is left. The file's contents do not change.
#pragma once

#include <filesystem>
#include <string>

namespace moescope::storage {

// True when the file has no WAL left (folded now, or there was none). False, changing nothing, when
// the run is still being written or another connection holds the file; *why then says which.
bool foldWal(const std::filesystem::path& file, std::string* why = nullptr);

}  // namespace moescope::storage
