#include "storage/record_merge.h"

#include <algorithm>
#include <map>
#include <set>

#include "storage/import_output.h"
#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "storage/sqlite_util.h"

namespace moescope::storage {
namespace {

std::string metaOf(const Trace& t, std::string_view key) {
  for (const auto& [k, v] : t.meta) {
    if (k == key) return v;
  }
  return {};
}

}  // namespace

RecordMergeReport mergeRecordedShards(const std::vector<std::filesystem::path>& shards,
                                      const std::filesystem::path& out,
                                      const std::function<void(int32_t, int32_t)>& progress) {
  if (shards.empty()) throw StorageError("no shard to merge");
  RecordMergeReport report;
  // Headers first: every shard readable, of one run, one rank each, on one clock.
  RunInfo run;
  std::string runId;
  std::set<int32_t> ranks;
  std::vector<std::pair<std::string, std::string>> firstMeta;
  for (size_t i = 0; i < shards.size(); ++i) {
    const Trace t = RunReader::open(shards[i])->load();
    const std::string id = metaOf(t, "shard.run_id");
    const std::string clock = metaOf(t, "clock.source");
    if (i == 0) {
      run = t.run;
      runId = id;
      firstMeta = t.meta;
    } else {
      if (id != runId)
        throw StorageError(shards[i].string() + ": shard of run '" + id + "', not of '" + runId + "'");
      run.start_ns = std::min(run.start_ns, t.run.start_ns);
      run.end_ns = std::max(run.end_ns, t.run.end_ns);
      run.microbatches = std::max(run.microbatches, t.run.microbatches);
      if (run.devices.find(t.run.devices) == std::string::npos && !t.run.devices.empty())
        run.devices += (run.devices.empty() ? "" : ", ") + t.run.devices;
    }
    if (clock != "host" || metaOf(t, "clock.offset_ns") != "0")
      throw StorageError(shards[i].string() + ": clock '" + clock +
                         "' needs a correction this merge does not apply (one host's shards only)");
    if (t.run.status != RunStatus::Complete) {
      report.failed = true;
      report.notes.push_back(shards[i].string() + ": " + std::string(runStatusName(t.run.status)) +
                             (t.run.error.empty() ? "" : " (" + t.run.error + ")"));
      if (run.error.empty()) run.error = t.run.error;
    }
    for (const RankInfo& r : t.ranks) {
      if (!ranks.insert(r.rank).second)
        throw StorageError(shards[i].string() + ": rank " + std::to_string(r.rank) +
                           " is in another shard too");
    }
  }
  run.status = report.failed ? RunStatus::Failed : RunStatus::Complete;
  run.name = out.stem().string();

  ImportOutput output(out);
  {
    auto writer = RunWriter::create(output.temporary(), run);
    for (const auto& [k, v] : firstMeta) {
      if (k.rfind("shard.", 0) != 0 && k.rfind("record.", 0) != 0 && k.rfind("cupti.", 0) != 0)
        writer->setMeta(k, v);
    }
    writer->setMeta("record.shards", std::to_string(shards.size()));
    writer->setMeta("record.run_id", runId);
    writer->updateRun(run);
    writer->finish();
  }
  {
    sqlite::Db db(output.temporary(), SQLITE_OPEN_READWRITE);
    std::map<int32_t, std::pair<int64_t, int64_t>> steps;
    for (size_t i = 0; i < shards.size(); ++i) {
      sqlite::Stmt attach(db, "ATTACH DATABASE ? AS s");
      attach.bind(1, shards[i].string());
      attach.run();
      attach = sqlite::Stmt();
      // ATTACH and DETACH are refused inside a transaction: one per shard, between them.
      db.exec("BEGIN", "begin a shard's copy");
      const int64_t strings = db.queryInt("SELECT COALESCE(MAX(id) + 1, 0) FROM main.strings");
      const int64_t tracks = db.queryInt("SELECT COALESCE(MAX(id) + 1, 0) FROM main.track");
      const int64_t spans = db.queryInt("SELECT COALESCE(MAX(id) + 1, 0) FROM main.span");
      const std::string s = std::to_string(strings), t = std::to_string(tracks), p = std::to_string(spans);
      const std::string sql =
          "INSERT INTO main.strings SELECT id + " + s +
          ", text FROM s.strings;"
          "INSERT INTO main.rank SELECT * FROM s.rank;"
          "INSERT INTO main.track (id, rank, kind, name, ord, device, stream, max_duration) "
          "SELECT id + " +
          t +
          ", rank, kind, name, ord, device, stream, max_duration FROM s.track;"
          "INSERT INTO main.span (id, track, start, \"end\", name, category, phase, step, microbatch, layer, "
          "expert, bytes, chunk) SELECT id + " +
          p + ", track + " + t + ", start, \"end\", name + " + s +
          ", category, phase, step, microbatch, layer, expert, bytes, chunk FROM s.span;"
          "INSERT INTO main.gpu_activity (track, start, \"end\", name, kind, device, stream, correlation, "
          "span, "
          "bytes) SELECT track + " +
          t + ", start, \"end\", name + " + s +
          ", kind, device, stream, correlation, CASE WHEN span < 0 THEN span ELSE span + " + p +
          " END, bytes FROM s.gpu_activity;"
          "INSERT INTO main.counter (track, time, value) SELECT track + " +
          t + ", time, value FROM s.counter;";
      db.exec(sql.c_str(), "copy a shard's rows");
      sqlite::Stmt st(db, "SELECT step, start_ns, end_ns FROM s.step_metric");
      while (st.step()) {
        auto [it, added] = steps.try_emplace(st.int32(0), std::pair{st.int64(1), st.int64(2)});
        if (!added) {
          it->second.first = std::min(it->second.first, st.int64(1));
          it->second.second = std::max(it->second.second, st.int64(2));
        }
      }
      st = sqlite::Stmt();
      db.exec("COMMIT", "commit a shard's copy");
      db.exec("DETACH DATABASE s", "detach a shard");
      if (progress) progress(static_cast<int32_t>(i + 1), static_cast<int32_t>(shards.size()));
    }
    sqlite::Stmt step(
        db,
        "INSERT INTO step_metric (step, loss, ce_loss, aux_loss, tokens, step_ms, tokens_per_s, "
        "start_ns, end_ns) VALUES (?, 0, 0, 0, 0, ?, 0, ?, ?)");
    for (const auto& [n, w] : steps) {
      step.bind(1, n);
      step.bind(2, static_cast<double>(w.second - w.first) / 1e6);
      step.bind(3, w.first);
      step.bind(4, w.second);
      step.run();
    }
    step = sqlite::Stmt();
    report.spans = db.queryInt("SELECT COUNT(*) FROM span");
    report.gpu_records = db.queryInt("SELECT COUNT(*) FROM gpu_activity");
  }
  report.shards = static_cast<int32_t>(shards.size());
  report.ranks.assign(ranks.begin(), ranks.end());
  output.commit();
  return report;
}

void markRunFailed(const std::filesystem::path& run, const std::string& error) {
  sqlite::Db db(run, SQLITE_OPEN_READWRITE);
  sqlite::Stmt st(db, "UPDATE run SET status = ?, error = ? WHERE id = 1");
  st.bind(1, static_cast<int32_t>(RunStatus::Failed));
  st.bind(2, error);
  st.run();
}

}  // namespace moescope::storage
