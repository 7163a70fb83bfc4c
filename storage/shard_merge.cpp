#include "storage/shard_merge.h"

#include <algorithm>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <unordered_map>

#include "storage/import_output.h"
#include "storage/run_reader.h"
#include "storage/schema.h"
#include "storage/sqlite_util.h"

namespace moescope::storage {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void refuse(const fs::path& file, const std::string& problem) {
  throw StorageError(file.string() + ": " + problem);
}

std::optional<int64_t> parseInt(const std::string& text) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used != text.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<double> parseReal(const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string joinRanks(const std::vector<int32_t>& ranks) {
  std::string s;
  for (int32_t r : ranks) s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

// The SQL of a time column moved onto rank 0's clock (ClockCorrection::apply); parameters ?1 offset,
// ?2 reference, ?3 drift as a fraction (ppb × 1e-9).
std::string corrected(const std::string& column) {
  return "(" + column + " + ?1 + CAST(ROUND((" + column + " - ?2) * ?3) AS INTEGER))";
}

void bindClock(sqlite::Stmt& st, const ClockCorrection& c) {
  st.bind(1, c.offset_ns);
  st.bind(2, c.reference_ns);
  st.bind(3, c.drift_ppb * 1e-9);
}

}  // namespace

ShardInfo readShardInfo(const fs::path& shard) {
  // A process killed while it closed its shard leaves a hot rollback journal beside it (the writer
  // leaves WAL mode at the end), which only a writable connection rolls back: SQLite does so on the
  // first read. What the shard had committed stays.
  std::error_code ec;
  if (fs::exists(shard.string() + "-journal", ec)) {
    try {
      sqlite::Db db(shard, SQLITE_OPEN_READWRITE);
      db.queryInt("SELECT count(*) FROM sqlite_master");
    } catch (const StorageError&) {
      // RunReader::open below names the problem.
    }
  }
  RunReader::open(shard);  // a run file of a version this build reads (migrated if older)
  sqlite::Db db(shard, SQLITE_OPEN_READONLY);
  ShardInfo info;
  info.file = shard;
  std::map<std::string, std::string> meta;
  {
    sqlite::Stmt st(db, "SELECT key, value FROM meta");
    while (st.step()) meta[st.text(0)] = st.text(1);
  }
  auto need = [&](std::string_view key) -> const std::string& {
    const auto it = meta.find(std::string(key));
    if (it == meta.end()) refuse(shard, "not a shard of a multi-process run (no " + std::string(key) + ")");
    return it->second;
  };
  auto needInt = [&](std::string_view key) {
    const auto v = parseInt(need(key));
    if (!v) refuse(shard, std::string(key) + " is not an integer ('" + need(key) + "')");
    return *v;
  };
  const int64_t count = needInt(kShardCountKey);
  const int64_t index = needInt(kShardIndexKey);
  // shard.count 0: the process did not know how many there were (no launcher's world size).
  if (count < 0 || count > 1'000'000)
    refuse(shard, "shard.count " + std::to_string(count) + " is out of range");
  if (index < 0 || index >= (count > 0 ? count : 1'000'000)) {
    refuse(shard,
           "shard.index " + std::to_string(index) + " is not below shard.count " + std::to_string(count));
  }
  info.count = static_cast<int32_t>(count);
  info.index = static_cast<int32_t>(index);
  info.run_id = need(kShardRunIdKey);
  if (meta.count(std::string(kClockOffsetKey))) {
    info.clock.offset_ns = needInt(kClockOffsetKey);
    const auto drift = parseReal(need(kClockDriftKey));
    if (!drift || std::abs(*drift) > 1e9)
      refuse(shard, "clock.drift_ppb is not a drift ('" + need(kClockDriftKey) + "')");
    info.clock.drift_ppb = *drift;
    info.clock.uncertainty_ns = needInt(kClockUncertaintyKey);
    if (info.clock.uncertainty_ns < 0) refuse(shard, "clock.uncertainty_ns is negative");
    info.clock.reference_ns = meta.count(std::string(kClockReferenceKey)) ? needInt(kClockReferenceKey) : 0;
    info.clock.source = meta.count(std::string(kClockSourceKey)) ? need(kClockSourceKey) : "";
  }
  {
    sqlite::Stmt st(db, "SELECT status, error FROM run WHERE id = 1");
    if (!st.step()) refuse(shard, "not a complete moescope run file (the run row is missing)");
    const int32_t status = st.int32(0);
    if (status < 0 || status > static_cast<int32_t>(RunStatus::Cancelled))
      refuse(shard, "corrupt file (run status " + std::to_string(status) + ")");
    info.status = static_cast<RunStatus>(status);
    info.error = st.text(1);
  }
  {
    sqlite::Stmt st(db, "SELECT rank FROM rank ORDER BY rank");
    while (st.step()) info.ranks.push_back(st.int32(0));
  }
  return info;
}

std::vector<fs::path> listShards(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) refuse(folder, "not a folder of shards");
  static const std::regex kName(R"(shard-(\d{1,9})\.moescope)");
  std::vector<std::pair<int64_t, fs::path>> found;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, kName)) found.emplace_back(std::stoll(m[1]), entry.path());
  }
  if (ec) refuse(folder, "cannot list (" + ec.message() + ")");
  if (found.empty()) refuse(folder, "holds no shard-<index>.moescope files");
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [index, path] : found) out.push_back(std::move(path));
  return out;
}

std::vector<ShardInfo> readShards(const std::vector<fs::path>& shardFiles) {
  if (shardFiles.empty()) throw StorageError("no shards given");
  std::vector<ShardInfo> shards;
  for (const fs::path& f : shardFiles) shards.push_back(readShardInfo(f));
  std::sort(shards.begin(), shards.end(),
            [](const ShardInfo& a, const ShardInfo& b) { return a.index < b.index; });
  const ShardInfo& first = shards.front();
  for (size_t i = 0; i < shards.size(); ++i) {
    const ShardInfo& s = shards[i];
    if (s.run_id != first.run_id) {
      refuse(s.file, "belongs to another run (shard.run_id " + s.run_id + ", " +
                         first.file.filename().string() + " has " + first.run_id + ")");
    }
    if (s.count != first.count) {
      refuse(s.file, "says the run has " + std::to_string(s.count) + " processes, " +
                         first.file.filename().string() + " says " + std::to_string(first.count));
    }
    if (i > 0 && s.index == shards[i - 1].index) {
      refuse(s.file, "repeats shard index " + std::to_string(s.index) + " of " + shards[i - 1].file.string());
    }
  }
  for (const ShardInfo& s : shards) {
    for (const ShardInfo& t : shards) {
      if (&s == &t) continue;
      for (int32_t r : s.ranks) {
        if (std::find(t.ranks.begin(), t.ranks.end(), r) != t.ranks.end() && s.index < t.index)
          refuse(t.file, "holds rank " + std::to_string(r) + ", as " + s.file.string() + " does");
      }
    }
  }
  return shards;
}

MergeReport summarizeShards(const std::vector<ShardInfo>& shards) {
  MergeReport report;
  if (shards.empty()) return report;
  const ShardInfo& first = shards.front();
  report.shards = static_cast<int32_t>(shards.size());
  // A count of 0 in every shard: the run had as many processes as there are shards, none missing.
  report.processes = first.count > 0 ? first.count : report.shards;
  {
    size_t k = 0;
    for (int32_t i = 0; i < first.count; ++i) {
      if (k < shards.size() && shards[k].index == i) {
        ++k;
      } else {
        report.missing.push_back(i);
      }
    }
  }
  std::string error;
  bool onlyCancelled = true;
  for (const ShardInfo& s : shards) {
    if (s.status == RunStatus::Complete) continue;
    report.stopped.push_back(s.index);
    if (s.status != RunStatus::Cancelled) onlyCancelled = false;
    std::string why = s.status == RunStatus::Running ? "stopped without finishing its trace (killed?)"
                                                     : std::string(runStatusName(s.status));
    if (!s.error.empty()) why += ": " + s.error;
    error += (error.empty() ? "" : "; ") +
             ("process " + std::to_string(s.index) + " (ranks " + joinRanks(s.ranks) + ") " + why);
  }
  for (int32_t i : report.missing) {
    onlyCancelled = false;
    error += (error.empty() ? "" : "; ") + ("process " + std::to_string(i) + ": no shard");
  }
  report.status = error.empty()   ? RunStatus::Complete
                  : onlyCancelled ? RunStatus::Cancelled
                                  : RunStatus::Failed;
  report.error = error;
  return report;
}

MergeReport mergeShards(const std::vector<fs::path>& shardFiles, const fs::path& out,
                        const MergeProgress& progress) {
  if (shardFiles.empty()) throw StorageError(out.string() + ": no shards to merge");
  // 1. Every shard's keys, checked before anything is written.
  const std::vector<ShardInfo> shards = readShards(shardFiles);
  const ShardInfo& first = shards.front();
  MergeReport report = summarizeShards(shards);

  // 2. The merged file, under a temporary name until it is whole. No journal: a failed merge deletes
  // the temporary file, so there is nothing to roll back to.
  ImportOutput output(out);
  {
    sqlite::Db db(output.temporary(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.exec("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;",
            "setting up the merged file");
    db.exec("BEGIN", "creating the schema");
    db.exec(std::string(schema::createSql()).c_str(), "creating the schema");
    db.exec(("PRAGMA user_version = " + std::to_string(schema::kVersion)).c_str(),
            "setting the schema version");
    db.exec("CREATE TEMP TABLE name_map (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)", "mapping names");
    db.exec("COMMIT", "creating the schema");

    std::unordered_map<std::string, int64_t> names;
    sqlite::Stmt insertString(db, "INSERT INTO main.strings (id, text) VALUES (?, ?)");
    sqlite::Stmt insertMap(db, "INSERT INTO temp.name_map (old, new) VALUES (?, ?)");
    sqlite::Stmt insertMeta(db, "INSERT OR REPLACE INTO main.meta (key, value) VALUES (?, ?)");
    auto meta = [&](const std::string& key, const std::string& value) {
      insertMeta.bind(1, key);
      insertMeta.bind(2, value);
      insertMeta.run();
    };
    int64_t tracks = 0, spans = 0;
    std::optional<int64_t> runStart, runEnd;
    int32_t done = 0;
    for (const ShardInfo& s : shards) {
      {
        sqlite::Stmt attach(db, "ATTACH DATABASE ? AS shard");
        attach.bind(1, s.file.string());
        attach.run();
      }
      db.exec("BEGIN", "merging a shard");
      // Names: the shard's string ids onto the merged table's.
      db.exec("DELETE FROM temp.name_map", "mapping names");
      bool identity = true;
      {
        sqlite::Stmt st(db, "SELECT id, text FROM shard.strings ORDER BY id");
        while (st.step()) {
          const int64_t old = st.int64(0);
          auto [it, fresh] = names.try_emplace(st.text(1), static_cast<int64_t>(names.size()));
          if (fresh) {
            insertString.bind(1, it->second);
            insertString.bind(2, it->first);
            insertString.run();
          }
          identity = identity && it->second == old;
          insertMap.bind(1, old);
          insertMap.bind(2, it->second);
          insertMap.run();
        }
      }
      const std::string name = identity ? "s.name" : "(SELECT new FROM temp.name_map WHERE old = s.name)";
      {
        sqlite::Stmt st(db,
                        "INSERT INTO main.track (id, rank, kind, name, ord, device, stream, max_duration) "
                        "SELECT id + ?, rank, kind, name, ord, device, stream, max_duration FROM shard.track "
                        "ORDER BY id");
        st.bind(1, tracks);
        st.run();
      }
      db.exec(
          "INSERT OR REPLACE INTO main.rank SELECT rank, stage, tp_rank, dp_rank, device, host FROM "
          "shard.rank",
          "merging ranks");
      {
        sqlite::Stmt st(
            db,
            "INSERT INTO main.span (id, track, start, \"end\", name, category, phase, step, "
            "microbatch, layer, expert, bytes, chunk, comm, seq, peer) SELECT s.id + ?4, s.track + ?5, " +
                corrected("s.start") + ", " + corrected("s.\"end\"") + ", " + name +
                ", s.category, s.phase, s.step, s.microbatch, s.layer, s.expert, s.bytes, "
                "s.chunk, s.comm, s.seq, s.peer FROM shard.span s ORDER BY s.id");
        bindClock(st, s.clock);
        st.bind(4, spans);
        st.bind(5, tracks);
        st.run();
        report.spans += sqlite3_changes64(db.get());
      }
      {
        sqlite::Stmt st(db,
                        "INSERT INTO main.gpu_activity (track, start, \"end\", name, kind, device, stream, "
                        "correlation, span, bytes, grid_x, grid_y, grid_z, block_x, block_y, block_z, "
                        "registers, shared_static, shared_dynamic) SELECT s.track + ?5, " +
                            corrected("s.start") + ", " + corrected("s.\"end\"") + ", " + name +
                            ", s.kind, s.device, s.stream, s.correlation, "
                            "CASE WHEN s.span >= 0 THEN s.span + ?4 ELSE s.span END, s.bytes, s.grid_x, "
                            "s.grid_y, s.grid_z, s.block_x, s.block_y, s.block_z, s.registers, "
                            "s.shared_static, s.shared_dynamic FROM shard.gpu_activity s ORDER BY s.id");
        bindClock(st, s.clock);
        st.bind(4, spans);
        st.bind(5, tracks);
        st.run();
        report.gpu_records += sqlite3_changes64(db.get());
      }
      {
        sqlite::Stmt st(db, "INSERT INTO main.counter (track, time, value) SELECT track + ?4, " +
                                corrected("time") + ", value FROM shard.counter ORDER BY id");
        bindClock(st, s.clock);
        st.bind(4, tracks);
        st.run();
        report.counters += sqlite3_changes64(db.get());
      }
      {
        sqlite::Stmt st(db,
                        "INSERT OR IGNORE INTO main.step_metric SELECT step, loss, ce_loss, aux_loss, "
                        "tokens, step_ms, tokens_per_s, " +
                            corrected("start_ns") + ", " + corrected("end_ns") +
                            ", peak_memory_bytes FROM shard.step_metric");
        bindClock(st, s.clock);
        st.run();
      }
      // Routing groups: a group two processes both recorded is kept once (its primary key).
      db.exec(
          "INSERT OR IGNORE INTO main.moe_routing (step, microbatch, layer, replica, assignments, dropped) "
          "SELECT step, microbatch, layer, replica, assignments, dropped FROM shard.moe_routing",
          "merging the MoE routing");
      db.exec(
          "INSERT OR IGNORE INTO main.moe_expert_load (step, microbatch, layer, replica, expert, kept) "
          "SELECT step, microbatch, layer, replica, expert, kept FROM shard.moe_expert_load",
          "merging the MoE routing");
      {
        // The run's own keys from the first shard; every shard's clock correction per rank.
        sqlite::Stmt st(db, "SELECT key, value FROM shard.meta");
        while (st.step()) {
          const std::string key = st.text(0);
          if (key.rfind("shard.", 0) == 0 || key.rfind("clock.", 0) == 0) continue;
          if (&s == &shards.front()) meta(key, st.text(1));
        }
        for (int32_t r : s.ranks) {
          meta(rankMetaKey(r, "process"), std::to_string(s.index));
          meta(rankMetaKey(r, kClockOffsetKey), std::to_string(s.clock.offset_ns));
          meta(rankMetaKey(r, kClockDriftKey), std::to_string(s.clock.drift_ppb));
          meta(rankMetaKey(r, kClockUncertaintyKey), std::to_string(s.clock.uncertainty_ns));
          meta(rankMetaKey(r, kClockSourceKey), s.clock.source);
        }
      }
      {
        sqlite::Stmt st(db, "SELECT start_ns, end_ns FROM shard.run WHERE id = 1");
        if (st.step()) {
          const int64_t a = s.clock.apply(st.int64(0)), b = s.clock.apply(st.int64(1));
          runStart = runStart ? std::min(*runStart, a) : a;
          if (st.int64(1) > 0) runEnd = runEnd ? std::max(*runEnd, b) : b;
        }
      }
      tracks = db.queryInt("SELECT count(*) FROM main.track");
      spans = db.queryInt("SELECT coalesce(max(id), -1) + 1 FROM main.span");
      db.exec("COMMIT", "merging a shard");
      db.exec("DETACH DATABASE shard", "merging a shard");
      ++done;
      if (progress) progress(done, report.shards);
    }
    // A run that stopped has no end time in its unfinished shards: its last record ends it.
    const int64_t lastRecord = db.queryInt("SELECT coalesce(max(\"end\"), 0) FROM main.span");
    {
      sqlite::Stmt attach(db, "ATTACH DATABASE ? AS shard");
      attach.bind(1, first.file.string());
      attach.run();
    }
    db.exec("BEGIN", "writing the run row");
    {
      sqlite::Stmt st(
          db,
          "INSERT INTO main.run (id, name, config, layout, backend, devices, clock, pp, tp, dp, "
          "microbatches, schedule, tokens_per_step, status, error, start_ns, end_ns, virtual_stages) "
          "SELECT 1, name, config, layout, backend, devices, clock, pp, tp, dp, microbatches, schedule, "
          "tokens_per_step, ?1, ?2, ?3, ?4, virtual_stages FROM shard.run WHERE id = 1");
      st.bind(1, static_cast<int32_t>(report.status));
      st.bind(2, report.error);
      st.bind(3, runStart.value_or(0));
      st.bind(4, std::max(runEnd.value_or(0), report.status == RunStatus::Complete ? 0 : lastRecord));
      st.run();
    }
    meta(std::string(kRunProcessesKey), std::to_string(report.processes));
    db.exec("COMMIT", "writing the run row");
    db.exec("DETACH DATABASE shard", "writing the run row");
    db.exec("PRAGMA cache_size = -262144", "finishing the merged file");
    db.exec(std::string(schema::finishSql()).c_str(), "building the span index");
  }
  output.commit();
  return report;
}

}  // namespace moescope::storage
