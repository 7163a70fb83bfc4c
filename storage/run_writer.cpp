#include "storage/run_writer.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/schema.h"
#include "storage/sqlite_util.h"

namespace moescope::storage {
namespace {

// Spans are inserted kSpanRowsPerInsert rows per statement: binding a multi-row VALUES list costs the
// same per value but runs the statement machinery once per batch, about twice as fast as row by row.
constexpr int kSpanRowsPerInsert = 64;
constexpr int kSpanColumns = 12;
// A transaction is committed automatically after this many rows, so the WAL stays bounded.
constexpr int64_t kRowsPerTransaction = 1 << 20;

std::string multiRowInsert(std::string_view head, int columns, int rows) {
  std::string row = "(";
  for (int c = 0; c < columns; ++c) row += c ? ",?" : "?";
  row += ")";
  std::string sql(head);
  for (int r = 0; r < rows; ++r) {
    sql += r ? "," : " VALUES ";
    sql += row;
  }
  return sql;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct RunWriter::Impl {
  sqlite::Db db;
  sqlite::Stmt insertString, insertRank, insertTrack, updateTrackMax, insertSpan, insertSpans, insertGpu,
      insertCounter, insertStep, insertMeta, updateRun, updateStatus;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> strings;
  std::vector<int64_t> trackMaxDuration;
  std::vector<bool> trackMaxDirty;
  int64_t nextSpanId = 0;
  int64_t rowsInTransaction = 0;
  bool inTransaction = false;

  explicit Impl(const std::filesystem::path& path) : db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {}

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
  }
  void bindSpan(sqlite::Stmt& st, int first, int64_t id, const SpanRecord& s) {
    st.bind(first + 0, id);
    st.bind(first + 1, s.track);
    st.bind(first + 2, s.start);
    st.bind(first + 3, s.end);
    st.bind(first + 4, static_cast<int64_t>(s.name));
    st.bind(first + 5, static_cast<int32_t>(s.category));
    st.bind(first + 6, static_cast<int32_t>(s.phase));
    st.bind(first + 7, s.step);
    st.bind(first + 8, s.microbatch);
    st.bind(first + 9, s.layer);
    st.bind(first + 10, s.expert);
    st.bind(first + 11, s.bytes);
  }
};

std::unique_ptr<RunWriter> RunWriter::create(const std::filesystem::path& path, const RunInfo& run) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path.string() + suffix, ec);
  }
  auto impl = std::make_unique<Impl>(path);
  sqlite::Db& db = impl->db;
  // WAL: readers see every commit while the writer goes on. synchronous=NORMAL: a commit does not
  // wait for the disk; a power loss may lose the last commits but never corrupts the file.
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;",
          "setting up the file");
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
  const char* spanHead =
      "INSERT INTO span (id, track, start, \"end\", name, category, phase, step, microbatch, layer, expert, "
      "bytes)";
  impl->insertSpan = sqlite::Stmt(db, multiRowInsert(spanHead, kSpanColumns, 1));
  impl->insertSpans = sqlite::Stmt(db, multiRowInsert(spanHead, kSpanColumns, kSpanRowsPerInsert));
  impl->insertGpu = sqlite::Stmt(db,
                                 "INSERT INTO gpu_activity (track, start, \"end\", name, kind, device, "
                                 "stream, correlation, span, bytes) "
                                 "VALUES (?,?,?,?,?,?,?,?,?,?)");
  impl->insertCounter = sqlite::Stmt(db, "INSERT INTO counter (track, time, value) VALUES (?,?,?)");
  impl->insertStep =
      sqlite::Stmt(db,
                   "INSERT OR REPLACE INTO step_metric (step, loss, ce_loss, aux_loss, tokens, "
                   "step_ms, tokens_per_s, start_ns, end_ns) VALUES (?,?,?,?,?,?,?,?,?)");
  impl->insertMeta = sqlite::Stmt(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
  const char* runColumns =
      "name, config, layout, backend, devices, clock, pp, tp, dp, microbatches, schedule, tokens_per_step, "
      "status, error, start_ns, end_ns";
  impl->updateRun = sqlite::Stmt(db, std::string("INSERT OR REPLACE INTO run (id, ") + runColumns +
                                         ") VALUES (1," + "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  impl->updateStatus = sqlite::Stmt(db, "UPDATE run SET status = ?, error = ?, end_ns = ? WHERE id = 1");

  impl->bindRun(impl->updateRun, run);
  impl->updateRun.run();
  db.exec("COMMIT", "creating the schema");
  impl->begin();
  return std::unique_ptr<RunWriter>(new RunWriter(std::move(impl)));
}

RunWriter::RunWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RunWriter::~RunWriter() {
  try {
    impl_->commit();
    // A finished file goes back to a rollback journal, so that readers (often read-only) leave no -wal
    // and -shm files beside it. While a reader still has the file open this fails; it then stays WAL.
    sqlite3_exec(impl_->db.get(), "PRAGMA journal_mode = DELETE", nullptr, nullptr, nullptr);
  } catch (const StorageError&) {
    // A destructor must not throw; what was committed before stays readable.
  }
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
  size_t i = 0;
  for (; i + kSpanRowsPerInsert <= spans.size(); i += kSpanRowsPerInsert) {
    for (int r = 0; r < kSpanRowsPerInsert; ++r) {
      im.bindSpan(im.insertSpans, 1 + r * kSpanColumns, im.nextSpanId++, spans[i + static_cast<size_t>(r)]);
    }
    im.insertSpans.run();
  }
  for (; i < spans.size(); ++i) {
    im.bindSpan(im.insertSpan, 1, im.nextSpanId++, spans[i]);
    im.insertSpan.run();
  }
  im.wrote(static_cast<int64_t>(spans.size()));
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
  st.run();
}

void RunWriter::setMeta(std::string_view key, std::string_view value) {
  impl_->insertMeta.bind(1, key);
  impl_->insertMeta.bind(2, value);
  impl_->insertMeta.run();
}

void RunWriter::updateRun(const RunInfo& run) {
  impl_->bindRun(impl_->updateRun, run);
  impl_->updateRun.run();
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

}  // namespace moescope::storage
