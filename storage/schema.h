// The run file's schema, declared once: every table, column and index of every version this build
// knows, the version number written into the file (PRAGMA user_version), and the steps that bring an
// older file up to date. The writer creates files with createSql(); the reader checks requiredTables()
// and runs migrate() on older files.
#pragma once

#include <span>
#include <string_view>

namespace moescope::storage::sqlite {
class Db;
}

namespace moescope::storage::schema {

// The version this build writes. Bump it when the schema changes, and add a Migration from the old one.
inline constexpr int kVersion = 6;

// DDL of the current version: tables and the indexes kept while writing (no PRAGMAs).
std::string_view createSql();
// DDL that completes a file once its spans are written: the span table's (track, start) index. Until
// then a reader finds spans by id (rowid) ranges, and a time window scans the table.
std::string_view finishSql();
// The index finishSql() creates; its absence marks a file whose writer has not finished.
std::string_view finishedIndex();

// The tables a file of kVersion must have, for the reader's check.
std::span<const std::string_view> requiredTables();

// One step of the migration path: brings a file from version `from` to `from + 1`.
struct Migration {
  int from = 0;
  std::string_view sql;
};
// Ordered by `from`: {1, ...} adds the schedule's chunk columns (run.virtual_stages, span.chunk);
// {2, ...} adds the kernel launch columns of gpu_activity; {3, ...} the communication call's identity
// (span.comm, span.seq, span.peer); {4, ...} the MoE routing tables (moe_routing, moe_expert_load); {5, ...}
// each step's device memory peak (step_metric.peak_memory_bytes).
std::span<const Migration> migrations();

// Applies every migration from `version` to kVersion in one transaction and sets user_version.
// The caller has checked 1 <= version <= kVersion.
void migrate(sqlite::Db& db, int version);

}  // namespace moescope::storage::schema
