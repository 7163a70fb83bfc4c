#include "storage/run_writer.h"

#include <algorithm>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/output_file.h"
#include "storage/schema.h"
#include "storage/shard_meta.h"
#include "storage/sqlite_util.h"

namespace moescope::storage {
namespace {

// A transaction is committed automatically after this many rows (about 2 MiB of span rows), so the WAL
// stays bounded and the page cache below holds a whole transaction.
constexpr int64_t kRowsPerTransaction = 1 << 15;
// The page cache while spans are appended. Small on purpose: appends never read a page back, and a
// cache SQLite fills with fresh pages is memory the kernel faults in one page at a time. 64 MiB took
// 1.2-1.5x the CPU of 4 MiB per span written (bench_shards, docs/bench-storage.md).
constexpr int kWriteCacheKiB = 4 * 1024;
// The page cache while the span index is built at the finish: SQLite's sorter keeps runs of this size
// in memory before it merges. At 4M spans 256 MiB took 10% less CPU than 64 MiB; at 10M the two are
// alike and only 1 GiB gains (8%), too much to hold at the end of a training run.
constexpr int kFinishCacheKiB = 256 * 1024;
// Disk space held back beside the file until it is closed (SpaceReserve), released when a write fails
// so the status "failed" still fits: that is a few pages of WAL (4 KiB each) and the run row.
constexpr int64_t kReserveBytes = 256 << 10;

// Sets the connection's page cache to `kib` KiB.
void setCacheKiB(sqlite::Db& db, int kib, const char* doing) {
  const std::string pragma = "PRAGMA cache_size = -" + std::to_string(kib);
  db.exec(pragma.c_str(), doing);
}

// span_batch(pointer): a table-valued function over the spans of one addSpans call, so that one
// INSERT ... SELECT writes the whole batch. Compared with binding a 64-row VALUES list, SQLite reads
// each value through xColumn instead of a bound parameter and runs the statement once per batch
// (bench_sqlite_insert "vtab": about 10% less CPU). The id is given for the batch's first row only;
// SQLite numbers the others max(id) + 1, which skips its uniqueness probe per row ("autoid": another
// 10-20%). The writer checks the last id after each batch.
struct SpanBatch {
  const SpanRecord* spans = nullptr;
  int64_t count = 0;
  int64_t firstId = 0;
};
constexpr const char* kSpanBatchPointer = "moescope.span_batch";
constexpr int kSpanBatchArgument = 16;  // the hidden column that takes the pointer

struct SpanBatchCursor {
  sqlite3_vtab_cursor base{};
  const SpanBatch* batch = nullptr;
  int64_t row = 0;
};

int spanBatchConnect(sqlite3* db, void*, int, const char* const*, sqlite3_vtab** out, char**) {
  const int rc =
      sqlite3_declare_vtab(db,
                           "CREATE TABLE x(id, track, start, \"end\", name, category, phase, step, "
                           "microbatch, layer, expert, bytes, chunk, comm, seq, peer, batch HIDDEN)");
  if (rc != SQLITE_OK) return rc;
  auto* vtab = static_cast<sqlite3_vtab*>(sqlite3_malloc(sizeof(sqlite3_vtab)));
  if (!vtab) return SQLITE_NOMEM;
  *vtab = sqlite3_vtab{};
  *out = vtab;
  return SQLITE_OK;
}
int spanBatchDisconnect(sqlite3_vtab* vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}
int spanBatchBestIndex(sqlite3_vtab*, sqlite3_index_info* info) {
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (c.iColumn == kSpanBatchArgument && c.op == SQLITE_INDEX_CONSTRAINT_EQ && c.usable) {
      info->aConstraintUsage[i].argvIndex = 1;
      info->aConstraintUsage[i].omit = 1;
      info->estimatedCost = 1;
      return SQLITE_OK;
    }
  }
  return SQLITE_CONSTRAINT;  // only usable as span_batch(?)
}
int spanBatchOpen(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  auto* cursor = new (std::nothrow) SpanBatchCursor;
  if (!cursor) return SQLITE_NOMEM;
  *out = &cursor->base;
  return SQLITE_OK;
}
int spanBatchClose(sqlite3_vtab_cursor* cur) {
  delete reinterpret_cast<SpanBatchCursor*>(cur);
  return SQLITE_OK;
}
int spanBatchFilter(sqlite3_vtab_cursor* cur, int, const char*, int argc, sqlite3_value** argv) {
  auto* c = reinterpret_cast<SpanBatchCursor*>(cur);
  c->batch =
      argc > 0 ? static_cast<const SpanBatch*>(sqlite3_value_pointer(argv[0], kSpanBatchPointer)) : nullptr;
  c->row = 0;
  return SQLITE_OK;
}
int spanBatchNext(sqlite3_vtab_cursor* cur) {
  ++reinterpret_cast<SpanBatchCursor*>(cur)->row;
  return SQLITE_OK;
}
int spanBatchEof(sqlite3_vtab_cursor* cur) {
  const auto* c = reinterpret_cast<SpanBatchCursor*>(cur);
  return !c->batch || c->row >= c->batch->count;
}
int spanBatchColumn(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) {
  const auto* c = reinterpret_cast<SpanBatchCursor*>(cur);
  const SpanRecord& s = c->batch->spans[c->row];
  switch (col) {
    case 0:
      if (c->row == 0) sqlite3_result_int64(ctx, c->batch->firstId);  // NULL after: max(id) + 1
      break;
    case 1:
      sqlite3_result_int64(ctx, s.track);
      break;
    case 2:
      sqlite3_result_int64(ctx, s.start);
      break;
    case 3:
      sqlite3_result_int64(ctx, s.end);
      break;
    case 4:
      sqlite3_result_int64(ctx, s.name);
      break;
    case 5:
      sqlite3_result_int64(ctx, static_cast<int64_t>(s.category));
      break;
    case 6:
      sqlite3_result_int64(ctx, static_cast<int64_t>(s.phase));
      break;
    case 7:
      sqlite3_result_int64(ctx, s.step);
      break;
    case 8:
      sqlite3_result_int64(ctx, s.microbatch);
      break;
    case 9:
      sqlite3_result_int64(ctx, s.layer);
      break;
    case 10:
      sqlite3_result_int64(ctx, s.expert);
      break;
    case 11:
      sqlite3_result_int64(ctx, s.bytes);
      break;
    case 12:
      sqlite3_result_int64(ctx, s.chunk);
      break;
    case 13:
      sqlite3_result_int64(ctx, s.comm);
      break;
    case 14:
      sqlite3_result_int64(ctx, s.seq);
      break;
    case 15:
      sqlite3_result_int64(ctx, s.peer);
      break;
    default:
      break;
  }
  return SQLITE_OK;
}
int spanBatchRowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) {
  *rowid = reinterpret_cast<SpanBatchCursor*>(cur)->row;
  return SQLITE_OK;
}

// Eponymous-only (no xCreate): exists on the writer's connection as span_batch(?), never in the file.
constexpr sqlite3_module spanBatchModule() {
  sqlite3_module m{};
  m.xConnect = spanBatchConnect;
  m.xBestIndex = spanBatchBestIndex;
  m.xDisconnect = spanBatchDisconnect;
  m.xOpen = spanBatchOpen;
  m.xClose = spanBatchClose;
  m.xFilter = spanBatchFilter;
  m.xNext = spanBatchNext;
  m.xEof = spanBatchEof;
  m.xColumn = spanBatchColumn;
  m.xRowid = spanBatchRowid;
  return m;
}
constexpr sqlite3_module kSpanBatchModule = spanBatchModule();

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct RunWriter::Impl {
  sqlite::Db db;
  sqlite::Stmt insertString, insertRank, insertTrack, updateTrackMax, insertSpans, insertGpu, insertCounter,
      insertStep, insertMeta, updateRun, updateStatus, insertRouting, insertExpertLoad;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> strings;
  std::vector<int64_t> trackMaxDuration;
  std::vector<bool> trackMaxDirty;
  int64_t nextSpanId = 0;
  int64_t rowsInTransaction = 0;
  bool inTransaction = false;
  bool finished = false;
  // A shard of a multi-process run (its shard.index is set) leaves the span index to the merge, which
  // builds it once in the run's one file: in the shard it would be a sort of every span that nothing
  // reads (the joint read of a shards folder reads by id ranges, and a window scans).
  bool shard = false;
  std::unique_ptr<SpaceReserve> reserve;

  explicit Impl(const std::filesystem::path& path) : db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {}

  // Rolls back a transaction a failed write left open (SQLite may have rolled it back already).
  void rollback() {
    if (!sqlite3_get_autocommit(db.get())) sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    inTransaction = false;
    rowsInTransaction = 0;
  }

  void begin() {
    if (!inTransaction) {
      db.exec("BEGIN", "starting a transaction");
      inTransaction = true;
    }
  }
  void commit() {
    if (!inTransaction) return;
    for (size_t t = 0; t < trackMaxDirty.size(); ++t) {
      if (!trackMaxDirty[t]) continue;
      updateTrackMax.bind(1, trackMaxDuration[t]);
      updateTrackMax.bind(2, static_cast<int64_t>(t));
      updateTrackMax.run();
      trackMaxDirty[t] = false;
    }
    db.exec("COMMIT", "committing");
    inTransaction = false;
    rowsInTransaction = 0;
  }
  void wrote(int64_t rows) {
    rowsInTransaction += rows;
    if (rowsInTransaction >= kRowsPerTransaction) {
      commit();
      begin();
    }
  }
  void bindRun(sqlite::Stmt& st, const RunInfo& run) {
    st.bind(1, run.name);
    st.bind(2, run.config);
    st.bind(3, run.layout);
    st.bind(4, run.backend);
    st.bind(5, run.devices);
    st.bind(6, run.clock);
    st.bind(7, run.pp);
    st.bind(8, run.tp);
    st.bind(9, run.dp);
    st.bind(10, run.microbatches);
    st.bind(11, static_cast<int32_t>(run.schedule));
    st.bind(12, run.tokens_per_step);
    st.bind(13, static_cast<int32_t>(run.status));
    st.bind(14, run.error);
    st.bind(15, run.start_ns);
    st.bind(16, run.end_ns);
    st.bind(17, run.virtual_stages);
  }
  // A predicted run says so in run_meta (the run table has no column for it: measured files keep
  // their schema).
  void writePredicted(const RunInfo& run) {
    if (!run.predicted) return;
    for (const auto& [key, value] : {std::pair<std::string_view, std::string_view>{kPredictedMeta, "1"},
                                     {kCalibrationMeta, run.calibration}}) {
      insertMeta.bind(1, key);
      insertMeta.bind(2, value);
      insertMeta.run();
    }
  }
  // Builds what a finished file has beyond a growing one (schema::finishSql), once.
  void finish() {
    commit();
    if (finished) return;
    finished = true;
    if (shard) return;
    setCacheKiB(db, kFinishCacheKiB, "finishing the file");
    db.exec("BEGIN", "finishing the file");
    const std::string ddl(schema::finishSql());
    db.exec(ddl.c_str(), "building the span index");
    db.exec("COMMIT", "finishing the file");
    setCacheKiB(db, kWriteCacheKiB, "finishing the file");
  }
};

std::unique_ptr<RunWriter> RunWriter::create(const std::filesystem::path& path, const RunInfo& run) {
  // An existing file is emptied rather than removed: it keeps its inode, so a lock its owner holds on
  // it (OutputFile's) stays valid. SQLite's side files of an earlier database are stale here.
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) std::filesystem::resize_file(path, 0, ec);
  if (ec) throw StorageError(path.string() + ": cannot create (" + ec.message() + ")");
  for (const char* suffix : {"-wal", "-shm", "-journal"}) std::filesystem::remove(path.string() + suffix, ec);
  auto impl = std::make_unique<Impl>(path);
  impl->reserve = std::make_unique<SpaceReserve>(path, kReserveBytes);
  sqlite::Db& db = impl->db;
  // WAL: readers see every commit while the writer goes on. synchronous=NORMAL: a commit does not
  // wait for the disk; a power loss may lose the last commits but never corrupts the file.
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", "setting up the file");
  setCacheKiB(db, kWriteCacheKiB, "setting up the file");
  db.exec("BEGIN", "creating the schema");
  const std::string ddl(schema::createSql());
  db.exec(ddl.c_str(), "creating the schema");
  const std::string version = "PRAGMA user_version = " + std::to_string(schema::kVersion);
  db.exec(version.c_str(), "setting the schema version");

  impl->insertString = sqlite::Stmt(db, "INSERT INTO strings (id, text) VALUES (?, ?)");
  impl->insertRank = sqlite::Stmt(
      db, "INSERT OR REPLACE INTO rank (rank, stage, tp_rank, dp_rank, device, host) VALUES (?,?,?,?,?,?)");
  impl->insertTrack = sqlite::Stmt(
      db, "INSERT INTO track (id, rank, kind, name, ord, device, stream) VALUES (?,?,?,?,?,?,?)");
  impl->updateTrackMax = sqlite::Stmt(db, "UPDATE track SET max_duration = ? WHERE id = ?");
  db.createModule("span_batch", &kSpanBatchModule, "registering the span batch function");
  const char* spanColumns =
      "id, track, start, \"end\", name, category, phase, step, microbatch, layer, expert, bytes, chunk, "
      "comm, seq, "
      "peer";
  impl->insertSpans = sqlite::Stmt(db, std::string("INSERT INTO span (") + spanColumns + ") SELECT " +
                                           spanColumns + " FROM span_batch(?)");
  impl->insertGpu =
      sqlite::Stmt(db,
                   "INSERT INTO gpu_activity (track, start, \"end\", name, kind, device, "
                   "stream, correlation, span, bytes, grid_x, grid_y, grid_z, block_x, block_y, "
                   "block_z, registers, shared_static, shared_dynamic) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  impl->insertCounter = sqlite::Stmt(db, "INSERT INTO counter (track, time, value) VALUES (?,?,?)");
  impl->insertStep = sqlite::Stmt(
      db,
      "INSERT OR REPLACE INTO step_metric (step, loss, ce_loss, aux_loss, tokens, "
      "step_ms, tokens_per_s, start_ns, end_ns, peak_memory_bytes) VALUES (?,?,?,?,?,?,?,?,?,?)");
  impl->insertMeta = sqlite::Stmt(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
  impl->insertRouting = sqlite::Stmt(db,
                                     "INSERT OR REPLACE INTO moe_routing (step, microbatch, layer, replica, "
                                     "assignments, dropped) VALUES (?,?,?,?,?,?)");
  impl->insertExpertLoad = sqlite::Stmt(db,
                                        "INSERT OR REPLACE INTO moe_expert_load (step, microbatch, layer, "
                                        "replica, expert, kept) VALUES (?,?,?,?,?,?)");
  const char* runColumns =
      "name, config, layout, backend, devices, clock, pp, tp, dp, microbatches, schedule, tokens_per_step, "
      "status, error, start_ns, end_ns, virtual_stages";
  impl->updateRun = sqlite::Stmt(db, std::string("INSERT OR REPLACE INTO run (id, ") + runColumns +
                                         ") VALUES (1," + "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  impl->updateStatus = sqlite::Stmt(db, "UPDATE run SET status = ?, error = ?, end_ns = ? WHERE id = 1");

  impl->bindRun(impl->updateRun, run);
  impl->updateRun.run();
  impl->writePredicted(run);
  db.exec("COMMIT", "creating the schema");
  impl->begin();
  return std::unique_ptr<RunWriter>(new RunWriter(std::move(impl)));
}

RunWriter::RunWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RunWriter::~RunWriter() {
  try {
    impl_->finish();
  } catch (const StorageError&) {
    // A destructor must not throw; what was committed before stays readable (without the span index,
    // which readers do without).
    impl_->rollback();
  }
  // A finished run is one file: every page moved from the WAL into the database file (waiting up to
  // 2 s for a reader's snapshot), then back to a rollback journal, so that no -wal and -shm stay
  // beside it and a copy of the file alone holds the whole run. While a reader (the GUI) has the file
  // open the journal switch fails, but the checkpoint has emptied the WAL all the same.
  sqlite3* db = impl_->db.get();
  sqlite3_busy_timeout(db, 2000);
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_exec(db, "PRAGMA journal_mode = DELETE", nullptr, nullptr, nullptr);
}

uint32_t RunWriter::intern(std::string_view text) {
  if (auto it = impl_->strings.find(text); it != impl_->strings.end()) return it->second;
  const auto id = static_cast<uint32_t>(impl_->strings.size());
  impl_->insertString.bind(1, static_cast<int64_t>(id));
  impl_->insertString.bind(2, text);
  impl_->insertString.run();
  impl_->strings.emplace(std::string(text), id);
  return id;
}

void RunWriter::addRank(const RankInfo& rank) {
  auto& st = impl_->insertRank;
  st.bind(1, rank.rank);
  st.bind(2, rank.stage);
  st.bind(3, rank.tp_rank);
  st.bind(4, rank.dp_rank);
  st.bind(5, rank.device);
  st.bind(6, rank.host);
  st.run();
}

int32_t RunWriter::addTrack(const TrackInfo& track) {
  const auto id = static_cast<int32_t>(impl_->trackMaxDuration.size());
  auto& st = impl_->insertTrack;
  st.bind(1, id);
  st.bind(2, track.rank);
  st.bind(3, static_cast<int32_t>(track.kind));
  st.bind(4, track.name);
  st.bind(5, track.order);
  st.bind(6, track.device);
  st.bind(7, track.stream);
  st.run();
  impl_->trackMaxDuration.push_back(0);
  impl_->trackMaxDirty.push_back(false);
  return id;
}

int64_t RunWriter::addSpans(std::span<const SpanRecord> spans) {
  Impl& im = *impl_;
  const int64_t first = im.nextSpanId;
  const auto trackCount = static_cast<int32_t>(im.trackMaxDuration.size());
  for (const SpanRecord& s : spans) {
    if (s.track < 0 || s.track >= trackCount) {
      throw StorageError(im.db.file().string() + ": span on unknown track " + std::to_string(s.track));
    }
    const int64_t d = s.end - s.start;
    if (d > im.trackMaxDuration[static_cast<size_t>(s.track)]) {
      im.trackMaxDuration[static_cast<size_t>(s.track)] = d;
      im.trackMaxDirty[static_cast<size_t>(s.track)] = true;
    }
  }
  if (spans.empty()) return first;
  SpanBatch batch{spans.data(), static_cast<int64_t>(spans.size()), first};
  im.insertSpans.bindPointer(1, &batch, kSpanBatchPointer);
  im.insertSpans.run();
  const int64_t last = first + batch.count - 1;
  if (sqlite3_last_insert_rowid(im.db.get()) != last) {
    throw StorageError(im.db.file().string() + ": span ids out of step (expected " + std::to_string(last) +
                       " last, SQLite gave " + std::to_string(sqlite3_last_insert_rowid(im.db.get())) + ")");
  }
  im.nextSpanId = last + 1;
  im.wrote(batch.count);
  return first;
}

void RunWriter::addGpuActivity(std::span<const GpuActivityRecord> records) {
  auto& st = impl_->insertGpu;
  for (const GpuActivityRecord& g : records) {
    st.bind(1, g.track);
    st.bind(2, g.start);
    st.bind(3, g.end);
    st.bind(4, static_cast<int64_t>(g.name));
    st.bind(5, static_cast<int32_t>(g.kind));
    st.bind(6, g.device);
    st.bind(7, g.stream);
    st.bind(8, g.correlation);
    st.bind(9, g.span);
    st.bind(10, g.bytes);
    const KernelLaunch& l = g.launch;
    const int32_t launch[] = {l.grid_x,  l.grid_y,    l.grid_z,        l.block_x,       l.block_y,
                              l.block_z, l.registers, l.shared_static, l.shared_dynamic};
    for (int k = 0; k < 9; ++k) st.bind(11 + k, launch[k]);
    st.run();
  }
  impl_->wrote(static_cast<int64_t>(records.size()));
}

void RunWriter::addCounters(std::span<const CounterSample> samples) {
  auto& st = impl_->insertCounter;
  for (const CounterSample& c : samples) {
    st.bind(1, c.track);
    st.bind(2, c.time);
    st.bind(3, c.value);
    st.run();
  }
  impl_->wrote(static_cast<int64_t>(samples.size()));
}

void RunWriter::addStepMetric(const StepMetric& m) {
  auto& st = impl_->insertStep;
  st.bind(1, m.step);
  st.bind(2, m.loss);
  st.bind(3, m.ce_loss);
  st.bind(4, m.aux_loss);
  st.bind(5, m.tokens);
  st.bind(6, m.step_ms);
  st.bind(7, m.tokens_per_s);
  st.bind(8, m.start_ns);
  st.bind(9, m.end_ns);
  if (m.peak_memory_bytes > 0) {
    st.bind(10, m.peak_memory_bytes);
  } else {
    st.bindNull(10);  // not counted
  }
  st.run();
}

void RunWriter::addMoeRouting(std::span<const MoeRouting> groups) {
  auto& route = impl_->insertRouting;
  auto& load = impl_->insertExpertLoad;
  int64_t rows = 0;
  for (const MoeRouting& g : groups) {
    route.bind(1, g.step);
    route.bind(2, g.microbatch);
    route.bind(3, g.layer);
    route.bind(4, g.replica);
    route.bind(5, g.assignments);
    route.bind(6, g.dropped);
    route.run();
    for (size_t e = 0; e < g.kept.size(); ++e) {
      load.bind(1, g.step);
      load.bind(2, g.microbatch);
      load.bind(3, g.layer);
      load.bind(4, g.replica);
      load.bind(5, static_cast<int64_t>(e));
      load.bind(6, g.kept[e]);
      load.run();
    }
    rows += 1 + static_cast<int64_t>(g.kept.size());
  }
  impl_->wrote(rows);
}

void RunWriter::setMeta(std::string_view key, std::string_view value) {
  impl_->insertMeta.bind(1, key);
  impl_->insertMeta.bind(2, value);
  impl_->insertMeta.run();
  if (key == kShardIndexKey) impl_->shard = true;
}

void RunWriter::updateRun(const RunInfo& run) {
  impl_->bindRun(impl_->updateRun, run);
  impl_->updateRun.run();
  impl_->writePredicted(run);
}

void RunWriter::setStatus(RunStatus status, std::string_view error, int64_t end_ns) {
  auto& st = impl_->updateStatus;
  st.bind(1, static_cast<int32_t>(status));
  st.bind(2, error);
  st.bind(3, end_ns);
  st.run();
}

void RunWriter::commit() {
  impl_->commit();
  impl_->begin();
}

void RunWriter::recover() {
  if (impl_->reserve) impl_->reserve->release();
  impl_->rollback();
}

void RunWriter::finish() {
  impl_->finish();
}

}  // namespace moescope::storage
