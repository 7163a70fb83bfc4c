#include "storage/schema.h"

#include <array>
#include <string>

#include "storage/sqlite_util.h"

namespace moescope::storage::schema {
namespace {

// The MoE routing of every (step, micro-batch, MoE layer, data-parallel replica): one row per routing
// group and layer, and its kept assignments per expert (trace_model.h, MoeRouting). A table rather
// than a counter track per expert and layer: 16 experts x 8 layers would be 128 tracks per rank, and a
// row keeps the micro-batch and the layer, which a counter sample has no column for.
constexpr std::string_view kMoeRoutingTables = R"sql(
CREATE TABLE moe_routing (
  step INTEGER NOT NULL, microbatch INTEGER NOT NULL, layer INTEGER NOT NULL, replica INTEGER NOT NULL,
  assignments INTEGER NOT NULL,   -- tokens x top_k
  dropped INTEGER NOT NULL,       -- over the capacity limit
  PRIMARY KEY (step, microbatch, layer, replica)
) WITHOUT ROWID;
CREATE TABLE moe_expert_load (
  step INTEGER NOT NULL, microbatch INTEGER NOT NULL, layer INTEGER NOT NULL, replica INTEGER NOT NULL,
  expert INTEGER NOT NULL, kept INTEGER NOT NULL,
  PRIMARY KEY (step, microbatch, layer, replica, expert)
) WITHOUT ROWID;
)sql";

// Version 6 (version 1 plus the pipeline schedule's chunks: run.virtual_stages, span.chunk, in 2; the
// kernel launch columns of gpu_activity, in 3; the communication call's identity: span.comm, span.seq,
// span.peer, in 4; the MoE layers' routing: moe_routing, moe_expert_load, in 5; the device memory peak
// of each step, step_metric.peak_memory_bytes, in 6). Enums are stored as
// their numeric values (trace_model.h, append only); kNone (-1) marks a missing step, micro-batch, layer,
// expert, chunk, device or span link. Time is int64 ns on the run's clock. Every table a view scans by
// time has an index on (track, start); span's is built at the finish. createSql() is kCreate then
// kMoeRoutingTables.
constexpr std::string_view kCreate = R"sql(
CREATE TABLE strings (
  id   INTEGER PRIMARY KEY,      -- name id used by span.name, gpu_activity.name
  text TEXT NOT NULL
);
CREATE TABLE run (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  name TEXT NOT NULL, config TEXT NOT NULL, layout TEXT NOT NULL, backend TEXT NOT NULL,
  devices TEXT NOT NULL, clock TEXT NOT NULL,
  pp INTEGER NOT NULL, tp INTEGER NOT NULL, dp INTEGER NOT NULL, microbatches INTEGER NOT NULL,
  schedule INTEGER NOT NULL, tokens_per_step INTEGER NOT NULL,
  status INTEGER NOT NULL, error TEXT NOT NULL,
  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
  virtual_stages INTEGER NOT NULL DEFAULT 1     -- model chunks per stage (interleaved schedule)
);
CREATE TABLE rank (
  rank INTEGER PRIMARY KEY,
  stage INTEGER NOT NULL, tp_rank INTEGER NOT NULL, dp_rank INTEGER NOT NULL,
  device INTEGER NOT NULL, host TEXT NOT NULL
);
CREATE TABLE track (
  id INTEGER PRIMARY KEY,        -- dense, from 0
  rank INTEGER NOT NULL, kind INTEGER NOT NULL, name TEXT NOT NULL, ord INTEGER NOT NULL,
  device INTEGER NOT NULL, stream INTEGER NOT NULL,
  max_duration INTEGER NOT NULL DEFAULT 0   -- longest span on the track, for window queries
);
CREATE TABLE span (
  id INTEGER PRIMARY KEY,        -- from 0, in write order; gpu_activity.span refers to it
  track INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
  name INTEGER NOT NULL, category INTEGER NOT NULL, phase INTEGER NOT NULL,
  step INTEGER NOT NULL, microbatch INTEGER NOT NULL, layer INTEGER NOT NULL, expert INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  chunk INTEGER NOT NULL DEFAULT -1,  -- the stage's model chunk of an interleaved schedule's pass
  comm INTEGER NOT NULL DEFAULT -1,   -- communication call: communicator id,
  seq INTEGER NOT NULL DEFAULT -1,    -- its sequence number there,
  peer INTEGER NOT NULL DEFAULT -1    -- the peer (send/recv) or the rank waited for (wait)
);
CREATE TABLE gpu_activity (
  id INTEGER PRIMARY KEY,
  track INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, name INTEGER NOT NULL,
  kind INTEGER NOT NULL, device INTEGER NOT NULL, stream INTEGER NOT NULL,
  correlation INTEGER NOT NULL, span INTEGER NOT NULL, bytes INTEGER NOT NULL,
  grid_x INTEGER NOT NULL DEFAULT 0, grid_y INTEGER NOT NULL DEFAULT 0, grid_z INTEGER NOT NULL DEFAULT 0,
  block_x INTEGER NOT NULL DEFAULT 0, block_y INTEGER NOT NULL DEFAULT 0, block_z INTEGER NOT NULL DEFAULT 0,
  registers INTEGER NOT NULL DEFAULT 0,             -- per thread
  shared_static INTEGER NOT NULL DEFAULT 0,         -- bytes per block
  shared_dynamic INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX gpu_activity_track_start ON gpu_activity (track, start);
CREATE TABLE counter (
  id INTEGER PRIMARY KEY,
  track INTEGER NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL
);
CREATE INDEX counter_track_time ON counter (track, time);
CREATE TABLE step_metric (
  step INTEGER PRIMARY KEY,
  loss REAL NOT NULL, ce_loss REAL NOT NULL, aux_loss REAL NOT NULL, tokens INTEGER NOT NULL,
  step_ms REAL NOT NULL, tokens_per_s REAL NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
  peak_memory_bytes INTEGER      -- the engine's device memory peak so far (StepMetric); NULL: not counted
);
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

// The span table's (track, start) index, built when the writer finishes (finishSql()). Spans arrive
// interleaved across tracks, so keeping this index while inserting is one B-tree descent per span;
// building it once at the end is a single sort, about twice as cheap, and the rows themselves are then
// pure appends. A file still being written reads by id ranges (the rowid), which needs no index.
constexpr std::string_view kFinishV1 = R"sql(
CREATE INDEX span_track_start ON span (track, start);
)sql";

// Version 1 to 2: the interleaved schedule's model chunks. Older runs had one chunk per stage: their
// spans keep chunk -1 (none), their run 1 virtual stage.
constexpr std::string_view kScheduleChunkColumns = R"sql(
ALTER TABLE run ADD COLUMN virtual_stages INTEGER NOT NULL DEFAULT 1;
ALTER TABLE span ADD COLUMN chunk INTEGER NOT NULL DEFAULT -1;
)sql";

// Version 2 to 3: a kernel's grid, block, registers and shared memory (CUPTI's kernel record); rows of
// older files keep 0.
constexpr std::string_view kKernelLaunchColumns = R"sql(
ALTER TABLE gpu_activity ADD COLUMN grid_x INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gpu_activity ADD COLUMN grid_y INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gpu_activity ADD COLUMN grid_z INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gpu_activity ADD COLUMN block_x INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gpu_activity ADD COLUMN block_y INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gpu_activity ADD COLUMN block_z INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gpu_activity ADD COLUMN registers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gpu_activity ADD COLUMN shared_static INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gpu_activity ADD COLUMN shared_dynamic INTEGER NOT NULL DEFAULT 0;
)sql";

// Version 3 to 4: the identity of each communication call (communicator, sequence number, peer), so a
// call is matched across its members and a wait names the rank it waited for. Older spans have none.
constexpr std::string_view kCommCallColumns = R"sql(
ALTER TABLE span ADD COLUMN comm INTEGER NOT NULL DEFAULT -1;
ALTER TABLE span ADD COLUMN seq INTEGER NOT NULL DEFAULT -1;
ALTER TABLE span ADD COLUMN peer INTEGER NOT NULL DEFAULT -1;
)sql";

// Version 5 to 6: each step's device memory peak (the engine's own count of its allocations). Older
// runs counted none: NULL, as a run on a backend that does not count.
constexpr std::string_view kStepPeakMemoryColumn = R"sql(
ALTER TABLE step_metric ADD COLUMN peak_memory_bytes INTEGER;
)sql";

// Version 4 to 5 adds kMoeRoutingTables: older runs recorded no routing (their tables stay empty).
constexpr std::array<Migration, 5> kMigrations = {
    Migration{1, kScheduleChunkColumns}, Migration{2, kKernelLaunchColumns}, Migration{3, kCommCallColumns},
    Migration{4, kMoeRoutingTables}, Migration{5, kStepPeakMemoryColumn}};

constexpr std::array<std::string_view, 11> kTables = {
    "strings", "run",         "rank", "track",       "span",           "gpu_activity",
    "counter", "step_metric", "meta", "moe_routing", "moe_expert_load"};

}  // namespace

std::string_view createSql() {
  static const std::string sql = std::string(kCreate) + std::string(kMoeRoutingTables);
  return sql;
}

std::string_view finishSql() {
  return kFinishV1;
}

std::string_view finishedIndex() {
  return "span_track_start";
}

std::span<const std::string_view> requiredTables() {
  return kTables;
}

std::span<const Migration> migrations() {
  return kMigrations;
}

void migrate(sqlite::Db& db, int version) {
  if (version >= kVersion) return;
  db.exec("BEGIN IMMEDIATE", "starting the schema migration");
  for (const Migration& m : migrations()) {
    if (m.from >= version && m.from < kVersion) {
      const std::string sql(m.sql);
      db.exec(sql.c_str(), "migrating the schema");
    }
  }
  const std::string setVersion = "PRAGMA user_version = " + std::to_string(kVersion);
  db.exec(setVersion.c_str(), "setting the schema version");
  db.exec("COMMIT", "committing the schema migration");
}

}  // namespace moescope::storage::schema
