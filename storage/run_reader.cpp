#include "storage/run_reader.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "base/run_tasks.h"
#include "storage/saturating.h"
#include "storage/schema.h"
#include "storage/sqlite_util.h"
#include "storage/utf8.h"

namespace moescope::storage {
namespace {

uint32_t bigEndian(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

[[noreturn]] void refuse(const std::filesystem::path& file, const std::string& problem) {
  throw StorageError(file.string() + ": " + problem);
}

// What the file's header says about how it is to be opened.
struct HeaderFacts {
  bool walMode = false;   // written in WAL mode and not finished (byte 18 = 2)
  bool staleWal = false;  // a -wal beside a file in rollback mode cannot be this file's: ignored
};

// Checks what can be checked without SQLite: that the file is a regular file, starts with SQLite's
// header, and is as long as its header says (a copy cut short fails here rather than on some later
// page read), unless a -wal file beside it holds the pages (a run that met a full disk before its
// checkpoint: the database file is then shorter than the pages the WAL gives it).
HeaderFacts checkHeader(const std::filesystem::path& file) {
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (!std::filesystem::exists(status)) refuse(file, "no such file");
  if (std::filesystem::is_directory(status)) refuse(file, "is a directory, not a run file");
  if (!std::filesystem::is_regular_file(status)) refuse(file, "is a device, FIFO or socket, not a run file");
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) refuse(file, "cannot read (" + ec.message() + ")");
  if (size == 0) refuse(file, "empty file, not a moescope run file");
  std::array<unsigned char, 100> header{};
  std::ifstream in(file, std::ios::binary);
  in.read(reinterpret_cast<char*>(header.data()), header.size());
  const auto got = static_cast<size_t>(in.gcount());
  static constexpr char kMagic[] = "SQLite format 3";  // followed by a NUL: 16 bytes
  if (got < 16 ||
      !std::equal(header.begin(), header.begin() + 16, reinterpret_cast<const unsigned char*>(kMagic))) {
    refuse(file, "not a SQLite database, so not a moescope run file");
  }
  if (got < header.size())
    refuse(file, "truncated file (" + std::to_string(size) + " bytes, shorter than its header)");
  HeaderFacts facts;
  facts.walMode = header[18] == 2 && header[19] == 2;
  const bool walBeside = std::filesystem::exists(file.string() + "-wal", ec);
  facts.staleWal = walBeside && header[18] == 1 && header[19] == 1;
  uint64_t pageSize = bigEndian(&header[16], 2);
  if (pageSize == 1) pageSize = 65536;
  const uint32_t pages = bigEndian(&header[28], 4);
  const bool pagesValid = bigEndian(&header[24], 4) == bigEndian(&header[92], 4);
  if (pagesValid && pages > 0 && size < pageSize * pages && !(facts.walMode && walBeside)) {
    refuse(file,
           "truncated file (" + std::to_string(size) + " of " + std::to_string(pageSize * pages) + " bytes)");
  }
  return facts;
}

// A read transaction: every query inside sees one snapshot, even while a writer commits.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(sqlite::Db& db) : db_(db) { db_.exec("BEGIN", "starting a read"); }
  ~ReadSnapshot() {
    try {
      db_.exec("COMMIT", "ending a read");
    } catch (const StorageError&) {
    }
  }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

 private:
  sqlite::Db& db_;
};

// No id column: the queries bound the ids, and the caller records the last one (one column fewer
// per row is a measurable part of a load).
constexpr const char* kSpanColumns =
    "SELECT track, start, \"end\", name, category, phase, step, microbatch, layer, expert, bytes, chunk, "
    "comm, seq, peer FROM span ";
constexpr const char* kLastSpanId = "SELECT coalesce(max(id), -1) FROM span";
constexpr const char* kGpuColumns =
    "SELECT id, track, start, \"end\", name, kind, device, stream, correlation, span, bytes, grid_x, grid_y, "
    "grid_z, block_x, block_y, block_z, registers, shared_static, shared_dynamic FROM gpu_activity ";
// The spans GPU records point at, with their ids (Trace::linked); the caller adds the condition on
// gpu_activity's rows.
constexpr const char* kLinkedSpans =
    "SELECT id, track, start, \"end\", name, category, phase, step, microbatch, layer, expert, bytes, chunk, "
    "comm, seq, peer FROM span "
    "WHERE id IN (SELECT span FROM gpu_activity WHERE span >= 0 ";
constexpr const char* kCounterColumns = "SELECT id, track, time, value FROM counter ";
// More experts (and MoE layers) than any MoE model has (DeepSeek-V3: 256 routed experts, 61 layers); a
// larger index is a corrupt row.
constexpr int32_t kMaxExperts = 1 << 16;

// The routing of the trace's last step with any (what a refresh reads again).
std::vector<MoeRouting> lastStepRouting(const Trace& t) {
  if (t.routing.empty()) return {};
  auto it = std::partition_point(t.routing.begin(), t.routing.end(),
                                 [s = t.routing.back().step](const MoeRouting& g) { return g.step < s; });
  return {it, t.routing.end()};
}

// One row of a query, every value checked before use: a number outside what the writer can write (a
// category this build does not know, a reference to no track or string, a time beyond kMaxTime, a count
// beyond sane limits) refuses the file with one line naming the column and the value, rather than
// becoming an index, an allocation size or an overflow further on. Text is made valid UTF-8.
class Row {
 public:
  Row(const sqlite::Stmt& st, const std::filesystem::path& file, const char* table)
      : st_(st), file_(file), table_(table) {}

  int64_t integer(int col, const char* column, int64_t lo, int64_t hi) const {
    const int64_t v = st_.int64(col);
    if (v < lo || v > hi) {
      refuse(file_, "corrupt file (" + std::string(table_) + "." + column + " = " + std::to_string(v) +
                        " is outside " + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    }
    return v;
  }
  int32_t int32(int col, const char* column, int32_t lo = INT32_MIN, int32_t hi = INT32_MAX) const {
    return static_cast<int32_t>(integer(col, column, lo, hi));
  }
  // kNone or a value from 0.
  int32_t optional(int col, const char* column) const { return int32(col, column, kNone); }
  int64_t time(int col, const char* column) const { return integer(col, column, 0, kMaxTime); }
  // A column that may hold nothing (NULL: `absent`) or an integer in lo..hi; text or a real number
  // there is a corrupt row too (int64() would read it as some number).
  int64_t integerOrNull(int col, const char* column, int64_t lo, int64_t hi, int64_t absent) const {
    const int type = st_.type(col);
    if (type == SQLITE_NULL) return absent;
    if (type != SQLITE_INTEGER)
      refuse(file_, "corrupt file (" + std::string(table_) + "." + column + " is not an integer)");
    return integer(col, column, lo, hi);
  }
  template <typename Enum>
  Enum enumerated(int col, const char* column, int count) const {
    return static_cast<Enum>(integer(col, column, 0, count - 1));
  }
  double finite(int col, const char* column) const {
    const double v = st_.real(col);
    if (!std::isfinite(v))
      refuse(file_, "corrupt file (" + std::string(table_) + "." + column + " is not finite)");
    return v;
  }
  double real(int col) const { return st_.real(col); }
  std::string text(int col) const { return validUtf8(st_.text(col)); }

 private:
  const sqlite::Stmt& st_;
  const std::filesystem::path& file_;
  const char* table_;
};

// Limits beyond which a count in a file cannot be a run's: ranks, stages and micro-batches at 2^20,
// tokens and bytes at 2^50.
constexpr int32_t kMaxRanks = 1 << 20;
constexpr int64_t kMaxAmount = int64_t{1} << 50;

}  // namespace

struct RunReader::Impl {
  sqlite::Db db;
  std::filesystem::path path;  // the run file (db may be an in-memory copy of it)
  bool parallelLoad = true;    // a second connection may read the file (not for an in-memory copy)
  bool immutable = false;      // opened ignoring a stale -wal beside the file
  Impl(const std::filesystem::path& file, int flags, bool ignoreWal = false)
      : db(file, flags, ignoreWal), path(file), immutable(ignoreWal) {}
  Impl(sqlite::Db memory, const std::filesystem::path& file) : db(std::move(memory)), path(file) {
    parallelLoad = false;
  }
  const std::filesystem::path& file() const { return path; }

  RunInfo readRun() {
    sqlite::Stmt st(
        db,
        "SELECT name, config, layout, backend, devices, clock, pp, tp, dp, microbatches, schedule, "
        "tokens_per_step, status, error, start_ns, end_ns, virtual_stages FROM run WHERE id = 1");
    if (!st.step()) refuse(file(), "not a complete moescope run file (the run row is missing)");
    const Row row(st, file(), "run");
    RunInfo r;
    r.name = row.text(0);
    r.config = row.text(1);
    r.layout = row.text(2);
    r.backend = row.text(3);
    r.devices = row.text(4);
    r.clock = row.text(5);
    r.pp = row.int32(6, "pp", 1, kMaxRanks);
    r.tp = row.int32(7, "tp", 1, kMaxRanks);
    r.dp = row.int32(8, "dp", 1, kMaxRanks);
    r.microbatches = row.int32(9, "microbatches", 1, kMaxRanks);
    r.schedule = row.enumerated<Schedule>(10, "schedule", kScheduleCount);
    r.tokens_per_step = row.integer(11, "tokens_per_step", 0, kMaxAmount);
    r.status = row.enumerated<RunStatus>(12, "status", kRunStatusCount);
    r.error = row.text(13);
    r.start_ns = row.time(14, "start_ns");
    r.end_ns = row.time(15, "end_ns");
    r.virtual_stages = row.int32(16, "virtual_stages", 1, kMaxRanks);
    sqlite::Stmt meta(db, "SELECT key, value FROM meta WHERE key IN (?, ?)");
    meta.bind(1, kPredictedMeta);
    meta.bind(2, kCalibrationMeta);
    while (meta.step()) {
      if (meta.text(0) == kPredictedMeta)
        r.predicted = meta.text(1) == "1";
      else
        r.calibration = meta.text(1);
    }
    return r;
  }

  // The string table is dense from 0 (the writer numbers names in order): an id anywhere else would be
  // an index far beyond the table.
  void readStrings(Trace& t) {
    sqlite::Stmt st(db, "SELECT id, text FROM strings WHERE id >= ? ORDER BY id");
    st.bind(1, static_cast<int64_t>(t.strings.size()));
    while (st.step()) {
      if (st.int64(0) != static_cast<int64_t>(t.strings.size())) {
        refuse(file(), "corrupt file (string ids are not dense: " + std::to_string(st.int64(0)) + " where " +
                           std::to_string(t.strings.size()) + " was due)");
      }
      t.strings.push_back(validUtf8(st.text(1)));
    }
  }

  void readRanks(Trace& t) {
    t.ranks.clear();
    sqlite::Stmt st(db, "SELECT rank, stage, tp_rank, dp_rank, device, host FROM rank ORDER BY rank");
    while (st.step()) {
      const Row row(st, file(), "rank");
      t.ranks.push_back({row.int32(0, "rank", 0, kMaxRanks), row.int32(1, "stage", 0, kMaxRanks),
                         row.int32(2, "tp_rank", 0, kMaxRanks), row.int32(3, "dp_rank", 0, kMaxRanks),
                         row.int32(4, "device", kNone, kMaxRanks), row.text(5)});
    }
  }

  // Tracks not read yet; returns the longest span duration per track (for window queries).
  std::vector<int64_t> readTracks(Trace& t) {
    std::vector<int64_t> maxDuration;
    sqlite::Stmt st(db,
                    "SELECT id, rank, kind, name, ord, device, stream, max_duration FROM track ORDER BY id");
    size_t expected = 0;
    while (st.step()) {
      const Row row(st, file(), "track");
      if (st.int64(0) != static_cast<int64_t>(expected++))
        refuse(file(), "corrupt file (track ids are not dense)");
      TrackInfo info{static_cast<int32_t>(st.int64(0)),
                     row.int32(1, "rank", 0, kMaxRanks),
                     row.enumerated<TrackKind>(2, "kind", kTrackKindCount),
                     row.text(3),
                     row.int32(4, "ord"),
                     row.int32(5, "device", kNone, kMaxRanks),
                     st.int64(6)};
      maxDuration.push_back(row.time(7, "max_duration"));
      if (static_cast<size_t>(info.id) >= t.tracks.size()) t.tracks.push_back(std::move(info));
    }
    t.spans.resize(t.tracks.size());
    return maxDuration;
  }

  // A span's columns from `first` on (track, start, end, name, category, phase, step, micro-batch,
  // layer, expert, bytes), checked against the tracks. A name id the string table lacks is kept: every
  // reader goes through Trace::name(), which gives an empty name for it (an unknown name, not an index).
  SpanRecord spanAt(const sqlite::Stmt& st, int first, size_t tracks) const {
    const Row row(st, file(), "span");
    SpanRecord s;
    s.track = row.int32(first, "track", 0, static_cast<int32_t>(std::min<size_t>(tracks, INT32_MAX)) - 1);
    s.start = row.time(first + 1, "start");
    s.end = row.integer(first + 2, "end", s.start, kMaxTime);
    s.name = static_cast<uint32_t>(row.integer(first + 3, "name", 0, UINT32_MAX));
    s.category = row.enumerated<Category>(first + 4, "category", kCategoryCount);
    s.phase = row.enumerated<Phase>(first + 5, "phase", kPhaseCount);
    s.step = row.optional(first + 6, "step");
    s.microbatch = row.optional(first + 7, "microbatch");
    s.layer = row.optional(first + 8, "layer");
    s.expert = row.optional(first + 9, "expert");
    s.bytes = row.integer(first + 10, "bytes", 0, kMaxAmount);
    s.chunk = row.optional(first + 11, "chunk");
    s.comm = row.optional(first + 12, "comm");
    s.seq = row.optional(first + 13, "seq");
    s.peer = row.optional(first + 14, "peer");
    return s;
  }

  // Appends the rows of a span query to their tracks; returns how many were read. The queries bound
  // the ids; the caller records the last one in t.loaded.span.
  size_t readSpans(Trace& t, sqlite::Stmt& st) {
    size_t n = 0;
    while (st.step()) {
      const SpanRecord s = spanAt(st, 0, t.spans.size());
      appendSpan(t.spans[static_cast<size_t>(s.track)], s);
      ++n;
    }
    return n;
  }

  size_t readGpu(Trace& t, sqlite::Stmt& st) {
    size_t n = 0;
    while (st.step()) {
      const Row row(st, file(), "gpu_activity");
      GpuActivityRecord g;
      g.track =
          row.int32(1, "track", 0, static_cast<int32_t>(std::min<size_t>(t.tracks.size(), INT32_MAX)) - 1);
      g.start = row.time(2, "start");
      g.end = row.integer(3, "end", g.start, kMaxTime);
      g.name = static_cast<uint32_t>(row.integer(4, "name", 0, UINT32_MAX));
      g.kind = row.enumerated<GpuActivityKind>(5, "kind", kGpuActivityKindCount);
      g.device = row.int32(6, "device", kNone, kMaxRanks);
      g.stream = st.int64(7);
      g.correlation = st.int64(8);
      g.span = row.integer(9, "span", kNone, INT64_MAX);
      g.bytes = row.integer(10, "bytes", 0, kMaxAmount);
      KernelLaunch& l = g.launch;
      int32_t* launch[] = {&l.grid_x,  &l.grid_y,    &l.grid_z,        &l.block_x,       &l.block_y,
                           &l.block_z, &l.registers, &l.shared_static, &l.shared_dynamic};
      static constexpr const char* kLaunch[] = {"grid_x",    "grid_y",        "grid_z",
                                                "block_x",   "block_y",       "block_z",
                                                "registers", "shared_static", "shared_dynamic"};
      for (int k = 0; k < 9; ++k) *launch[k] = row.int32(11 + k, kLaunch[k], 0);
      t.gpu.push_back(g);
      t.loaded.gpu = std::max(t.loaded.gpu, st.int64(0));
      ++n;
    }
    return n;
  }

  void readLinked(Trace& t, sqlite::Stmt& st) {
    while (st.step()) {
      LinkedSpan l;
      l.id = st.int64(0);
      l.span = spanAt(st, 1, t.tracks.size());
      t.linked.push_back(l);
    }
  }

  size_t readCounters(Trace& t, sqlite::Stmt& st) {
    size_t n = 0;
    while (st.step()) {
      const Row row(st, file(), "counter");
      t.counters.push_back(
          {row.int32(1, "track", 0, static_cast<int32_t>(std::min<size_t>(t.tracks.size(), INT32_MAX)) - 1),
           row.time(2, "time"), row.finite(3, "value")});
      t.loaded.counter = std::max(t.loaded.counter, st.int64(0));
      ++n;
    }
    return n;
  }

  void readSteps(Trace& t) {
    t.steps.clear();
    sqlite::Stmt st(db,
                    "SELECT step, loss, ce_loss, aux_loss, tokens, step_ms, tokens_per_s, start_ns, end_ns, "
                    "peak_memory_bytes FROM step_metric ORDER BY step");
    while (st.step()) {
      const Row row(st, file(), "step_metric");
      StepMetric m;
      m.step = row.int32(0, "step", 0);
      m.loss = row.real(1);  // a run that diverged has NaN losses (stored as NULL, read as 0)
      m.ce_loss = row.real(2);
      m.aux_loss = row.real(3);
      m.tokens = row.integer(4, "tokens", 0, kMaxAmount);
      m.step_ms = row.finite(5, "step_ms");
      m.tokens_per_s = row.finite(6, "tokens_per_s");
      m.start_ns = row.time(7, "start_ns");
      m.end_ns = row.integer(8, "end_ns", m.start_ns, kMaxTime);
      m.peak_memory_bytes = row.integerOrNull(9, "peak_memory_bytes", 0, kMaxAmount, 0);
      t.steps.push_back(m);
    }
  }

  // The MoE routing from step `from` on (a growing run's last step may have had only part of its
  // rows): those already loaded from there are read again. Every value is checked before use, and a
  // group's experts must be dense from 0 and as many as every other group's (the writer writes each
  // group's whole [E] vector): an expert index is never an allocation size.
  void readRouting(Trace& t, int32_t from) {
    std::erase_if(t.routing, [from](const MoeRouting& g) { return g.step >= from; });
    const size_t first = t.routing.size();
    sqlite::Stmt groups(db,
                        "SELECT step, microbatch, layer, replica, assignments, dropped FROM moe_routing "
                        "WHERE step >= ? ORDER BY step, microbatch, layer, replica");
    groups.bind(1, from);
    while (groups.step()) {
      const Row row(groups, file(), "moe_routing");
      MoeRouting g;
      g.step = row.int32(0, "step", 0);
      g.microbatch = row.int32(1, "microbatch", 0, kMaxRanks);
      g.layer = row.int32(2, "layer", 0, kMaxExperts);
      g.replica = row.int32(3, "replica", 0, kMaxRanks);
      g.assignments = row.integer(4, "assignments", 0, kMaxAmount);
      g.dropped = row.integer(5, "dropped", 0, g.assignments);
      t.routing.push_back(std::move(g));
    }
    sqlite::Stmt load(db,
                      "SELECT step, microbatch, layer, replica, expert, kept FROM moe_expert_load "
                      "WHERE step >= ? ORDER BY step, microbatch, layer, replica, expert");
    load.bind(1, from);
    // Both queries walk their primary keys in the same order: one merge pass.
    auto key = [](const MoeRouting& g) { return std::tuple(g.step, g.microbatch, g.layer, g.replica); };
    size_t i = first;
    while (load.step()) {
      const Row row(load, file(), "moe_expert_load");
      const auto k = std::tuple(row.int32(0, "step", 0), row.int32(1, "microbatch", 0, kMaxRanks),
                                row.int32(2, "layer", 0, kMaxExperts), row.int32(3, "replica", 0, kMaxRanks));
      while (i < t.routing.size() && key(t.routing[i]) < k) ++i;
      if (i == t.routing.size() || key(t.routing[i]) != k)
        refuse(file(), "corrupt file (a moe_expert_load row has no moe_routing row)");
      MoeRouting& g = t.routing[i];
      const int64_t expert = row.integer(4, "expert", 0, kMaxExperts - 1);
      if (expert != static_cast<int64_t>(g.kept.size())) {
        refuse(file(), "corrupt file (moe_expert_load of step " + std::to_string(g.step) + " names expert " +
                           std::to_string(expert) + " where " + std::to_string(g.kept.size()) + " was due)");
      }
      g.kept.push_back(row.integer(5, "kept", 0, g.assignments));
    }
    for (const MoeRouting& g : t.routing) {
      if (g.kept.size() != t.routing.front().kept.size()) {
        refuse(file(), "corrupt file (moe_expert_load: a group of step " + std::to_string(g.step) + " has " +
                           std::to_string(g.kept.size()) + " experts, another " +
                           std::to_string(t.routing.front().kept.size()) + ")");
      }
    }
    // Every MoE layer routes every micro-batch of every step, so the MoE view's grid of (layer, step,
    // micro-batch) cells is about as large as the groups are many. A file whose layers and steps are
    // spread far wider (more cells than twice the groups, plus a row and a column) would make that grid
    // an allocation of the file's choosing.
    std::set<int32_t> layers;
    uint64_t columns = 0;
    for (size_t j = 0; j < t.routing.size(); ++j) {
      const MoeRouting& g = t.routing[j];
      layers.insert(g.layer);
      if (j == 0 || g.step != t.routing[j - 1].step || g.microbatch != t.routing[j - 1].microbatch) ++columns;
    }
    if (layers.size() * columns > 2 * t.routing.size() + layers.size() + columns) {
      refuse(file(), "corrupt file (moe_routing: " + std::to_string(layers.size()) + " layers over " +
                         std::to_string(columns) + " micro-batches in only " +
                         std::to_string(t.routing.size()) + " groups)");
    }
  }

  void readMeta(Trace& t) {
    t.meta.clear();
    sqlite::Stmt st(db, "SELECT key, value FROM meta ORDER BY key");
    while (st.step()) {
      const Row row(st, file(), "meta");
      t.meta.emplace_back(row.text(0), row.text(1));
    }
  }

  // Whether the writer has finished the file (its span index is there).
  bool hasFinishedIndex() {
    sqlite::Stmt st(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?");
    st.bind(1, schema::finishedIndex());
    return st.step() && st.int64(0) > 0;
  }

  // Everything but spans, GPU records and counters.
  std::vector<int64_t> readSmallTables(Trace& t) {
    t.run = readRun();
    readStrings(t);
    readRanks(t);
    auto maxDuration = readTracks(t);
    readSteps(t);
    readRouting(t, t.routing.empty() ? 0 : t.routing.back().step);
    readMeta(t);
    return maxDuration;
  }
};

std::unique_ptr<RunReader> RunReader::open(const std::filesystem::path& path) {
  const HeaderFacts facts = checkHeader(path);
  // Read-only, always: reading never changes a run file. A stale -wal (left beside a file that was
  // replaced by a finished one) would be replayed onto it by SQLite; opened immutable, it is ignored.
  auto impl = std::make_unique<Impl>(path, SQLITE_OPEN_READONLY, facts.staleWal);
  int64_t version = 0;
  int64_t tables = 0;
  try {
    version = impl->db.queryInt("PRAGMA user_version");
    tables = impl->db.queryInt("SELECT count(*) FROM sqlite_master WHERE type = 'table'");
  } catch (const StorageError&) {
    refuse(path, "corrupt file (SQLite cannot read its header or schema)");
  }
  if (version == 0) {
    refuse(path, tables == 0 ? "an empty SQLite database, not a moescope run file"
                             : "a SQLite database but not a moescope run file (no schema version)");
  }
  if (version < 0) {
    refuse(path,
           "a SQLite database but not a moescope run file (schema version " + std::to_string(version) + ")");
  }
  if (version > schema::kVersion) {
    refuse(path, "written by a newer moescope (file version " + std::to_string(version) +
                     ", this build reads up to " + std::to_string(schema::kVersion) + "); update moescope");
  }
  if (version < schema::kVersion) {
    // An older file is brought up to date in a copy in memory; the file itself stays as it is.
    sqlite::Db memory(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    sqlite3_backup* backup = sqlite3_backup_init(memory.get(), "main", impl->db.get(), "main");
    const int rc = backup ? sqlite3_backup_step(backup, -1) : SQLITE_ERROR;
    sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE) refuse(path, "corrupt file (cannot be read to bring it up to date)");
    impl = std::make_unique<Impl>(std::move(memory), path);
    schema::migrate(impl->db, static_cast<int>(version));
  }
  std::string missing;
  sqlite::Stmt st(impl->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?");
  for (std::string_view table : schema::requiredTables()) {
    st.bind(1, table);
    st.step();
    if (st.int64(0) == 0) missing += (missing.empty() ? "" : ", ") + std::string(table);
    st.reset();
  }
  if (!missing.empty()) refuse(path, "not a complete moescope run file (missing tables: " + missing + ")");
  return std::unique_ptr<RunReader>(new RunReader(std::move(impl)));
}

RunReader::RunReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunReader::~RunReader() = default;

RunInfo RunReader::run() const {
  ReadSnapshot snapshot(impl_->db);
  return impl_->readRun();
}

std::vector<StepMetric> RunReader::steps() const {
  ReadSnapshot snapshot(impl_->db);
  Trace t;
  impl_->readSteps(t);
  return std::move(t.steps);
}

Trace RunReader::load(int64_t parallelFromRows) const {
  Trace t;
  {
    ReadSnapshot snapshot(impl_->db);
    impl_->readSmallTables(t);
    // Rows are only ever appended, so the ids up to this snapshot's last one are final: a second
    // connection can read the upper half of them on another core while this one reads the lower.
    const int64_t lastId = impl_->db.queryInt(kLastSpanId);
    const int64_t split =
        lastId + 1 >= std::max<int64_t>(2, parallelFromRows) && impl_->parallelLoad ? lastId / 2 : lastId;
    Trace upper;
    upper.tracks = t.tracks;
    upper.spans.resize(t.spans.size());
    runTasks(split < lastId ? 2 : 1, [&, file = impl_->file()](int half) {
      if (half == 1) {
        Impl second(file, SQLITE_OPEN_READONLY, impl_->immutable);
        sqlite::Stmt spans(second.db, std::string(kSpanColumns) + "WHERE id > ? AND id <= ? ORDER BY id");
        spans.bind(1, split);
        spans.bind(2, lastId);
        second.readSpans(upper, spans);
        return;
      }
      sqlite::Stmt spans(impl_->db, std::string(kSpanColumns) + "WHERE id <= ? ORDER BY id");
      spans.bind(1, split);
      impl_->readSpans(t, spans);
      sqlite::Stmt gpu(impl_->db, std::string(kGpuColumns) + "ORDER BY id");
      impl_->readGpu(t, gpu);
      sqlite::Stmt linked(impl_->db, std::string(kLinkedSpans) + ")");
      impl_->readLinked(t, linked);
      sqlite::Stmt counters(impl_->db, std::string(kCounterColumns) + "ORDER BY id");
      impl_->readCounters(t, counters);
    });
    for (size_t track = 0; track < t.spans.size(); ++track) appendSpans(t.spans[track], upper.spans[track]);
    t.loaded.span = lastId;
  }
  finishTrace(t);
  for (SpanColumns& c : t.spans) shrinkSpans(c);
  return t;
}

Trace RunReader::loadWindow(int64_t t0, int64_t t1) const {
  Trace t;
  {
    ReadSnapshot snapshot(impl_->db);
    const std::vector<int64_t> maxDuration = impl_->readSmallTables(t);
    t.loaded.span = impl_->db.queryInt(kLastSpanId);
    if (impl_->hasFinishedIndex()) {
      // The index on (track, start) bounds each track's scan; spans that start up to the track's
      // longest duration before t0 may still reach into the window.
      sqlite::Stmt spans(impl_->db, std::string(kSpanColumns) +
                                        "WHERE track = ? AND start >= ? AND start < ? AND \"end\" > ?");
      for (size_t track = 0; track < t.tracks.size(); ++track) {
        spans.bind(1, static_cast<int64_t>(track));
        spans.bind(2, saturatingSub(t0, maxDuration[track]));
        spans.bind(3, t1);
        spans.bind(4, t0);
        impl_->readSpans(t, spans);
        spans.reset();
      }
    } else {
      // A file still being written has no such index yet (schema::finishSql): one scan for all tracks.
      sqlite::Stmt spans(impl_->db, std::string(kSpanColumns) + "WHERE start < ? AND \"end\" > ?");
      spans.bind(1, t1);
      spans.bind(2, t0);
      impl_->readSpans(t, spans);
    }
    sqlite::Stmt gpu(impl_->db, std::string(kGpuColumns) + "WHERE start < ? AND \"end\" > ? ORDER BY id");
    gpu.bind(1, t1);
    gpu.bind(2, t0);
    impl_->readGpu(t, gpu);
    sqlite::Stmt linked(impl_->db, std::string(kLinkedSpans) + "AND start < ? AND \"end\" > ?)");
    linked.bind(1, t1);
    linked.bind(2, t0);
    impl_->readLinked(t, linked);
    sqlite::Stmt counters(impl_->db,
                          std::string(kCounterColumns) + "WHERE time >= ? AND time < ? ORDER BY id");
    counters.bind(1, t0);
    counters.bind(2, t1);
    impl_->readCounters(t, counters);
  }
  finishTrace(t);
  return t;
}

bool RunReader::refresh(Trace& trace) const {
  const size_t strings = trace.strings.size(), tracks = trace.tracks.size(), steps = trace.steps.size(),
               ranks = trace.ranks.size();
  const std::vector<MoeRouting> lastRouting = lastStepRouting(trace);
  const RunInfo before = trace.run;
  const auto meta = trace.meta.size();
  std::vector<size_t> sortedBefore;
  for (const SpanColumns& c : trace.spans) sortedBefore.push_back(c.size());
  size_t rows = 0;
  {
    ReadSnapshot snapshot(impl_->db);
    impl_->readSmallTables(trace);
    const int64_t lastId = impl_->db.queryInt(kLastSpanId);
    sqlite::Stmt spans(impl_->db, std::string(kSpanColumns) + "WHERE id > ? AND id <= ? ORDER BY id");
    spans.bind(1, trace.loaded.span);
    spans.bind(2, lastId);
    rows += impl_->readSpans(trace, spans);
    trace.loaded.span = std::max(trace.loaded.span, lastId);
    const int64_t gpuBefore = trace.loaded.gpu;
    sqlite::Stmt gpu(impl_->db, std::string(kGpuColumns) + "WHERE id > ? ORDER BY id");
    gpu.bind(1, trace.loaded.gpu);
    rows += impl_->readGpu(trace, gpu);
    sqlite::Stmt linked(impl_->db, std::string(kLinkedSpans) + "AND id > ?)");
    linked.bind(1, gpuBefore);
    impl_->readLinked(trace, linked);
    sqlite::Stmt counters(impl_->db, std::string(kCounterColumns) + "WHERE id > ? ORDER BY id");
    counters.bind(1, trace.loaded.counter);
    rows += impl_->readCounters(trace, counters);
  }
  if (rows > 0) finishTrace(trace, sortedBefore);
  return rows > 0 || strings != trace.strings.size() || tracks != trace.tracks.size() ||
         steps != trace.steps.size() || ranks != trace.ranks.size() || meta != trace.meta.size() ||
         !(before == trace.run) || lastRouting != lastStepRouting(trace);
}

}  // namespace moescope::storage
