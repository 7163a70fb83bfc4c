#include "storage/run_reader.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "base/run_tasks.h"
#include "storage/schema.h"
#include "storage/sqlite_util.h"

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

// Checks what can be checked without SQLite: that the file exists, starts with SQLite's header, and
// is as long as its header says (a copy cut short fails here rather than on some later page read).
void checkHeader(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) refuse(file, "no such file");
  if (std::filesystem::is_directory(file, ec)) refuse(file, "is a directory, not a run file");
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
  uint64_t pageSize = bigEndian(&header[16], 2);
  if (pageSize == 1) pageSize = 65536;
  const uint32_t pages = bigEndian(&header[28], 4);
  const bool pagesValid = bigEndian(&header[24], 4) == bigEndian(&header[92], 4);
  if (pagesValid && pages > 0 && size < pageSize * pages) {
    refuse(file,
           "truncated file (" + std::to_string(size) + " of " + std::to_string(pageSize * pages) + " bytes)");
  }
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
    "SELECT track, start, \"end\", name, category, phase, step, microbatch, layer, expert, bytes, chunk FROM "
    "span ";
constexpr const char* kLastSpanId = "SELECT coalesce(max(id), -1) FROM span";
constexpr const char* kGpuColumns =
    "SELECT id, track, start, \"end\", name, kind, device, stream, correlation, span, bytes FROM "
    "gpu_activity ";
// The spans GPU records point at, with their ids (Trace::linked); the caller adds the condition on
// gpu_activity's rows.
constexpr const char* kLinkedSpans =
    "SELECT id, track, start, \"end\", name, category, phase, step, microbatch, layer, expert, bytes, chunk "
    "FROM span "
    "WHERE id IN (SELECT span FROM gpu_activity WHERE span >= 0 ";
constexpr const char* kCounterColumns = "SELECT id, track, time, value FROM counter ";
// More experts than any MoE model has (DeepSeek-V3: 256 routed); a larger index is a corrupt row.
constexpr int64_t kMaxExperts = 1 << 16;

// The routing of the trace's last step with any (what a refresh reads again).
std::vector<MoeRouting> lastStepRouting(const Trace& t) {
  if (t.routing.empty()) return {};
  auto it = std::partition_point(t.routing.begin(), t.routing.end(),
                                 [s = t.routing.back().step](const MoeRouting& g) { return g.step < s; });
  return {it, t.routing.end()};
}

}  // namespace

struct RunReader::Impl {
  sqlite::Db db;
  explicit Impl(const std::filesystem::path& file, int flags) : db(file, flags) {}
  const std::filesystem::path& file() const { return db.file(); }

  RunInfo readRun() {
    sqlite::Stmt st(
        db,
        "SELECT name, config, layout, backend, devices, clock, pp, tp, dp, microbatches, schedule, "
        "tokens_per_step, status, error, start_ns, end_ns, virtual_stages FROM run WHERE id = 1");
    if (!st.step()) refuse(file(), "not a complete moescope run file (the run row is missing)");
    RunInfo r;
    r.name = st.text(0);
    r.config = st.text(1);
    r.layout = st.text(2);
    r.backend = st.text(3);
    r.devices = st.text(4);
    r.clock = st.text(5);
    r.pp = st.int32(6);
    r.tp = st.int32(7);
    r.dp = st.int32(8);
    r.microbatches = st.int32(9);
    r.schedule = static_cast<Schedule>(st.int32(10));
    r.tokens_per_step = st.int64(11);
    r.status = static_cast<RunStatus>(st.int32(12));
    r.error = st.text(13);
    r.start_ns = st.int64(14);
    r.end_ns = st.int64(15);
    r.virtual_stages = st.int32(16);
    return r;
  }

  void readStrings(Trace& t) {
    sqlite::Stmt st(db, "SELECT id, text FROM strings WHERE id >= ? ORDER BY id");
    st.bind(1, static_cast<int64_t>(t.strings.size()));
    while (st.step()) {
      const auto id = static_cast<size_t>(st.int64(0));
      if (id >= t.strings.size()) t.strings.resize(id + 1);
      t.strings[id] = st.text(1);
    }
  }

  void readRanks(Trace& t) {
    t.ranks.clear();
    sqlite::Stmt st(db, "SELECT rank, stage, tp_rank, dp_rank, device, host FROM rank ORDER BY rank");
    while (st.step()) {
      t.ranks.push_back({st.int32(0), st.int32(1), st.int32(2), st.int32(3), st.int32(4), st.text(5)});
    }
  }

  // Tracks not read yet; returns the longest span duration per track (for window queries).
  std::vector<int64_t> readTracks(Trace& t) {
    std::vector<int64_t> maxDuration;
    sqlite::Stmt st(db,
                    "SELECT id, rank, kind, name, ord, device, stream, max_duration FROM track ORDER BY id");
    size_t expected = 0;
    while (st.step()) {
      TrackInfo info{st.int32(0), st.int32(1), static_cast<TrackKind>(st.int32(2)), st.text(3), st.int32(4),
                     st.int32(5), st.int64(6)};
      if (info.id != static_cast<int32_t>(expected++))
        refuse(file(), "corrupt file (track ids are not dense)");
      maxDuration.push_back(st.int64(7));
      if (static_cast<size_t>(info.id) >= t.tracks.size()) t.tracks.push_back(std::move(info));
    }
    t.spans.resize(t.tracks.size());
    return maxDuration;
  }

  // Appends the rows of a span query to their tracks; returns how many were read. The queries bound
  // the ids; the caller records the last one in t.loaded.span.
  size_t readSpans(Trace& t, sqlite::Stmt& st) {
    size_t n = 0;
    const auto tracks = static_cast<int64_t>(t.spans.size());
    while (st.step()) {
      const int64_t track = st.int64(0);
      if (track < 0 || track >= tracks)
        refuse(file(), "corrupt file (a span on unknown track " + std::to_string(track) + ")");
      SpanRecord s;
      s.track = static_cast<int32_t>(track);
      s.start = st.int64(1);
      s.end = st.int64(2);
      s.name = static_cast<uint32_t>(st.int64(3));
      s.category = static_cast<Category>(st.int32(4));
      s.phase = static_cast<Phase>(st.int32(5));
      s.step = st.int32(6);
      s.microbatch = st.int32(7);
      s.layer = st.int32(8);
      s.expert = st.int32(9);
      s.bytes = st.int64(10);
      s.chunk = st.int32(11);
      appendSpan(t.spans[static_cast<size_t>(track)], s);
      ++n;
    }
    return n;
  }

  size_t readGpu(Trace& t, sqlite::Stmt& st) {
    size_t n = 0;
    while (st.step()) {
      t.gpu.push_back({st.int32(1), st.int64(2), st.int64(3), static_cast<uint32_t>(st.int64(4)),
                       static_cast<GpuActivityKind>(st.int32(5)), st.int32(6), st.int64(7), st.int64(8),
                       st.int64(9), st.int64(10)});
      t.loaded.gpu = std::max(t.loaded.gpu, st.int64(0));
      ++n;
    }
    return n;
  }

  void readLinked(Trace& t, sqlite::Stmt& st) {
    while (st.step()) {
      LinkedSpan l;
      l.id = st.int64(0);
      l.span.track = st.int32(1);
      l.span.start = st.int64(2);
      l.span.end = st.int64(3);
      l.span.name = static_cast<uint32_t>(st.int64(4));
      l.span.category = static_cast<Category>(st.int32(5));
      l.span.phase = static_cast<Phase>(st.int32(6));
      l.span.step = st.int32(7);
      l.span.microbatch = st.int32(8);
      l.span.layer = st.int32(9);
      l.span.expert = st.int32(10);
      l.span.bytes = st.int64(11);
      l.span.chunk = st.int32(12);
      t.linked.push_back(l);
    }
  }

  size_t readCounters(Trace& t, sqlite::Stmt& st) {
    size_t n = 0;
    while (st.step()) {
      t.counters.push_back({st.int32(1), st.int64(2), st.real(3)});
      t.loaded.counter = std::max(t.loaded.counter, st.int64(0));
      ++n;
    }
    return n;
  }

  void readSteps(Trace& t) {
    t.steps.clear();
    sqlite::Stmt st(db,
                    "SELECT step, loss, ce_loss, aux_loss, tokens, step_ms, tokens_per_s, start_ns, end_ns "
                    "FROM step_metric ORDER BY step");
    while (st.step()) {
      t.steps.push_back({st.int32(0), st.real(1), st.real(2), st.real(3), st.int64(4), st.real(5), st.real(6),
                         st.int64(7), st.int64(8)});
    }
  }

  // The MoE routing from step `from` on (a growing run's last step may have had only part of its
  // rows): those already loaded from there are read again. Every value is checked before use.
  void readRouting(Trace& t, int32_t from) {
    std::erase_if(t.routing, [from](const MoeRouting& g) { return g.step >= from; });
    const size_t first = t.routing.size();
    sqlite::Stmt groups(db,
                        "SELECT step, microbatch, layer, replica, assignments, dropped FROM moe_routing "
                        "WHERE step >= ? ORDER BY step, microbatch, layer, replica");
    groups.bind(1, from);
    while (groups.step()) {
      MoeRouting g{groups.int32(0),
                   groups.int32(1),
                   groups.int32(2),
                   groups.int32(3),
                   groups.int64(4),
                   groups.int64(5),
                   {}};
      if (g.step < 0 || g.microbatch < 0 || g.layer < 0 || g.replica < 0 || g.assignments < 0 ||
          g.dropped < 0 || g.dropped > g.assignments)
        refuse(file(),
               "corrupt file (a moe_routing row of step " + std::to_string(g.step) + " is out of range)");
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
      const auto k = std::tuple(load.int32(0), load.int32(1), load.int32(2), load.int32(3));
      while (i < t.routing.size() && key(t.routing[i]) < k) ++i;
      const int64_t expert = load.int64(4), kept = load.int64(5);
      if (i == t.routing.size() || key(t.routing[i]) != k)
        refuse(file(), "corrupt file (a moe_expert_load row has no moe_routing row)");
      MoeRouting& g = t.routing[i];
      if (expert < 0 || expert >= kMaxExperts || kept < 0 || kept > g.assignments)
        refuse(file(),
               "corrupt file (a moe_expert_load row of step " + std::to_string(g.step) + " is out of range)");
      if (g.kept.size() <= static_cast<size_t>(expert)) g.kept.resize(static_cast<size_t>(expert) + 1, 0);
      g.kept[static_cast<size_t>(expert)] = kept;
    }
    // Every group of a run has the same experts: the most any group names.
    size_t experts = 0;
    for (const MoeRouting& g : t.routing) experts = std::max(experts, g.kept.size());
    for (MoeRouting& g : t.routing) g.kept.resize(experts, 0);
  }

  void readMeta(Trace& t) {
    t.meta.clear();
    sqlite::Stmt st(db, "SELECT key, value FROM meta ORDER BY key");
    while (st.step()) t.meta.emplace_back(st.text(0), st.text(1));
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
  checkHeader(path);
  auto impl = std::make_unique<Impl>(path, SQLITE_OPEN_READONLY);
  int version = 0;
  int tables = 0;
  try {
    version = static_cast<int>(impl->db.queryInt("PRAGMA user_version"));
    tables = static_cast<int>(impl->db.queryInt("SELECT count(*) FROM sqlite_master WHERE type = 'table'"));
  } catch (const StorageError&) {
    refuse(path, "corrupt file (SQLite cannot read its header or schema)");
  }
  if (version == 0) {
    refuse(path, tables == 0 ? "an empty SQLite database, not a moescope run file"
                             : "a SQLite database but not a moescope run file (no schema version)");
  }
  if (version > schema::kVersion) {
    refuse(path, "written by a newer moescope (file version " + std::to_string(version) +
                     ", this build reads up to " + std::to_string(schema::kVersion) + "); update moescope");
  }
  if (version < schema::kVersion) {
    impl = std::make_unique<Impl>(path, SQLITE_OPEN_READWRITE);
    schema::migrate(impl->db, version);
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

Trace RunReader::load(int64_t parallelFromRows) const {
  Trace t;
  {
    ReadSnapshot snapshot(impl_->db);
    impl_->readSmallTables(t);
    // Rows are only ever appended, so the ids up to this snapshot's last one are final: a second
    // connection can read the upper half of them on another core while this one reads the lower.
    const int64_t lastId = impl_->db.queryInt(kLastSpanId);
    const int64_t split = lastId + 1 >= std::max<int64_t>(2, parallelFromRows) ? lastId / 2 : lastId;
    Trace upper;
    upper.tracks = t.tracks;
    upper.spans.resize(t.spans.size());
    runTasks(split < lastId ? 2 : 1, [&, file = impl_->file()](int half) {
      if (half == 1) {
        Impl second(file, SQLITE_OPEN_READONLY);
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
        spans.bind(2, t0 - maxDuration[track]);
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
