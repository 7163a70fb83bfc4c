#include "storage/record_shard.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <unordered_map>

#include "storage/import_kineto.h"
#include "storage/import_output.h"
#include "storage/import_rank_writer.h"
#include "storage/import_resolve.h"
#include "storage/run_writer.h"
#include "storage/shard_meta.h"
#include "storage/sqlite_util.h"

namespace moescope::storage {
namespace {

// Builds the Kineto-shaped columns the import's resolution reads: ranges as user annotations, launch
// calls as CUDA runtime calls, GPU records on their (device, stream) tracks.
KinetoFile asKineto(const RecordStream& stream, const std::vector<RecordedRange>& ranges) {
  KinetoFile file;
  file.path = "pid " + std::to_string(stream.pid);
  file.base_time_ns = 0;
  file.host_name = stream.host;
  std::map<std::pair<bool, std::pair<int64_t, int64_t>>, uint32_t> trackOf;
  auto track = [&](bool gpu, int64_t a, int64_t b) {
    auto [it, added] = trackOf.try_emplace({gpu, {a, b}}, static_cast<uint32_t>(file.tracks.size()));
    if (added) file.tracks.push_back({gpu, a, b});
    return it->second;
  };
  file.events.reserve(ranges.size() + stream.calls.size() + stream.gpu.size());
  for (const RecordedRange& r : ranges) {
    KinetoEvent e;
    e.ts = r.start;
    e.dur = r.end - r.start;
    e.name = r.name;
    e.track = track(false, stream.pid, r.thread);
    e.kind = KinetoKind::UserAnnotation;
    file.events.push_back(e);
  }
  for (const RecordCall& c : stream.calls) {
    KinetoEvent e;
    e.ts = c.start;
    e.dur = std::max<int64_t>(0, c.end - c.start);
    e.name = c.name;
    e.track = track(false, stream.pid, c.thread);
    e.kind = KinetoKind::CudaRuntime;
    e.correlation = c.correlation;
    file.events.push_back(e);
  }
  for (const RecordGpu& g : stream.gpu) {
    KinetoEvent e;
    e.ts = g.start;
    e.dur = std::max<int64_t>(0, g.end - g.start);
    e.name = g.name;
    e.track = track(true, g.device, g.stream);
    e.kind = g.kind == GpuActivityKind::Kernel   ? KinetoKind::Kernel
             : g.kind == GpuActivityKind::Memcpy ? KinetoKind::Memcpy
                                                 : KinetoKind::Memset;
    e.correlation = g.correlation;
    e.bytes = g.bytes;
    file.events.push_back(e);
  }
  for (const KinetoTrack& t : file.tracks) {
    if (t.gpu) continue;
    const auto named = stream.threadNames.find(t.tid);
    file.thread_names[{t.pid, t.tid}] = named != stream.threadNames.end() ? named->second
                                        : t.tid == stream.pid             ? "main thread"
                                                                          : "thread " + std::to_string(t.tid);
  }
  return file;
}

}  // namespace

std::vector<RecordedRange> pairRanges(const RecordStream& stream, int64_t& unclosed, int64_t& unmatchedEnds) {
  std::vector<RecordedRange> out;
  std::map<std::pair<int64_t, uint32_t>, std::vector<size_t>> open;  // (thread, domain) -> pushed ranges
  std::unordered_map<uint64_t, size_t> started;                      // start/end id -> range
  std::vector<bool> closed;
  for (const RecordEvent& e : stream.events) {
    switch (e.kind) {
      case RecordEventKind::Push:
        open[{e.thread, e.domain}].push_back(out.size());
        out.push_back({e.thread, e.time, e.time, e.name, e.domain});
        closed.push_back(false);
        break;
      case RecordEventKind::Start:
        started[e.id] = out.size();
        out.push_back({e.thread, e.time, e.time, e.name, e.domain});
        closed.push_back(false);
        break;
      case RecordEventKind::Mark:
        out.push_back({e.thread, e.time, e.time, e.name, e.domain});
        closed.push_back(true);
        break;
      case RecordEventKind::Pop: {
        auto it = open.find({e.thread, e.domain});
        if (it == open.end() || it->second.empty()) {
          ++unmatchedEnds;
          break;
        }
        const size_t r = it->second.back();
        it->second.pop_back();
        out[r].end = std::max(out[r].start, e.time);
        closed[r] = true;
        break;
      }
      case RecordEventKind::End: {
        auto it = started.find(e.id);
        if (it == started.end()) {
          ++unmatchedEnds;
          break;
        }
        out[it->second].end = std::max(out[it->second].start, e.time);
        closed[it->second] = true;
        started.erase(it);
        break;
      }
    }
  }
  for (size_t r = 0; r < out.size(); ++r) {
    if (closed[r]) continue;
    out[r].end = std::max(out[r].start, stream.end_ns);
    ++unclosed;
  }
  return out;
}

ShardSummary writeRecordedShard(const RecordStream& stream, const ShardWriteOptions& o) {
  if (!o.rules) throw StorageError("writeRecordedShard: no naming rules given");
  ShardSummary summary;
  const std::vector<RecordedRange> ranges = pairRanges(stream, summary.unclosed, summary.unmatched_ends);
  summary.ranges = static_cast<int64_t>(ranges.size());
  summary.calls = static_cast<int64_t>(stream.calls.size());
  const KinetoFile file = asKineto(stream, ranges);

  const int32_t rank = o.shard.rank >= 0 && o.shard.rank < o.layout.world() ? o.shard.rank : 0;
  const RankCoord coord = rankCoord(o.layout, rank);
  summary.stage = coord.stage;
  std::vector<NameFields> nameCache;
  std::vector<bool> nameCached;
  ResolveContext ctx{*o.rules, stream.names, nameCache, nameCached, o.layout, o.schedule};
  const RankResolution res = resolveRank(file, coord.stage, ctx);

  // --steps: host events of the steps asked for, GPU records whose launch is one of them (or, launched
  // by no call seen, that start inside one of those steps).
  std::vector<bool> keep;
  std::vector<StepWindow> steps = res.steps;
  if (o.steps) {
    const auto [first, last] = *o.steps;
    auto wanted = [&](int32_t s) { return s != kNone && s >= first && s <= last; };
    std::erase_if(steps, [&](const StepWindow& w) { return !wanted(w.step); });
    keep.assign(file.events.size(), false);
    for (uint32_t i = 0; i < file.events.size(); ++i) {
      const KinetoEvent& e = file.events[i];
      if (!isGpuRecord(e.kind)) {
        keep[i] = wanted(res.fields[i].step);
      } else if (res.launch[i] != kNoEvent) {
        keep[i] = wanted(res.fields[res.launch[i]].step);
      } else {
        keep[i] = std::any_of(steps.begin(), steps.end(),
                              [&](const StepWindow& w) { return e.ts >= w.start && e.ts < w.end; });
      }
      if (!keep[i]) ++summary.left_out;
    }
  }

  ImportOutput output(o.output);
  RunInfo run;
  // The merged run takes its name from the first shard: a shard in RUN.moescope.shards/ is named RUN.
  const std::string folder = o.output.parent_path().filename().string();
  run.name = folder.ends_with(".shards")
                 ? std::filesystem::path(folder.substr(0, folder.size() - 7)).stem().string()
                 : o.output.stem().string();
  run.backend = "recorded";
  run.layout = "recorded";
  run.devices = res.device != kNone ? "GPU " + std::to_string(res.device) : "";
  run.pp = o.layout.pp;
  run.tp = o.layout.tp;
  run.dp = o.layout.dp;
  run.schedule = o.schedule;
  run.microbatches = std::max(1, res.microbatches);
  run.config = "# recorded by moescope-cli record\n[record]\ncommand = \"" + o.shard.command + "\"\n";
  run.start_ns = stream.start_ns;
  run.end_ns = stream.end_ns;
  auto writer = RunWriter::create(output.temporary(), run);
  std::vector<uint32_t> writerNames;
  ImportedRank written;
  RankWriter(*writer, stream.names, writerNames).write(file, res, rank, written, o.steps ? &keep : nullptr);
  writer->addRank({rank, coord.stage, coord.tp, coord.dp, res.device, stream.host});
  for (const StepWindow& w : steps) {
    StepMetric m;
    m.step = w.step;
    m.start_ns = w.start;
    m.end_ns = w.end;
    m.step_ms = static_cast<double>(w.end - w.start) / 1e6;
    writer->addStepMetric(m);
  }
  summary.spans = written.spans;
  summary.kernels = written.kernels;
  summary.memcpys = written.memcpys;
  summary.memsets = written.memsets;
  summary.linked = written.linked;
  summary.unlinked = written.unlinked;
  summary.steps = static_cast<int32_t>(steps.size());
  summary.microbatches = res.microbatches;

  auto meta = [&](std::string_view key, const std::string& value) { writer->setMeta(key, value); };
  meta(kShardIndexKey, std::to_string(o.shard.index));
  meta(kShardCountKey, std::to_string(o.shard.count));
  meta(kShardRunIdKey, o.shard.run_id);
  meta(kShardRanksKey, std::to_string(rank));
  // Every process of a host reads the same CLOCK_MONOTONIC: no correction between them.
  const ClockCorrection host;
  meta(kClockOffsetKey, std::to_string(host.offset_ns));
  meta(kClockDriftKey, "0");
  meta(kClockUncertaintyKey, std::to_string(host.uncertainty_ns));
  meta(kClockReferenceKey, std::to_string(host.reference_ns));
  meta(kClockSourceKey, host.source);
  meta("record.host", stream.host);
  meta("record.pid", std::to_string(stream.pid));
  meta("record.rank", std::to_string(rank));
  meta("record.command", o.shard.command);
  meta("record.gpu", stream.gpu_recorded ? "cupti" : "off: " + stream.gpu_note);
  meta("record.ranges", std::to_string(summary.ranges));
  meta("record.launch_calls", std::to_string(summary.calls));
  meta("record.unclosed_ranges", std::to_string(summary.unclosed));
  meta("record.unmatched_range_ends", std::to_string(summary.unmatched_ends));
  meta("record.events_dropped", std::to_string(stream.events_dropped));
  meta("record.linked_gpu_records", std::to_string(summary.linked));
  meta("record.unlinked_gpu_records", std::to_string(summary.unlinked));
  meta("record.user_spans", std::to_string(res.counts.user_spans));
  meta("record.numbered_passes", std::to_string(res.counts.numbered_passes));
  meta("record.layout", "pp " + std::to_string(o.layout.pp) + " tp " + std::to_string(o.layout.tp) + " dp " +
                            std::to_string(o.layout.dp) + " order " + rankOrderName(o.layout.order));
  if (o.steps) meta("record.steps", std::to_string(o.steps->first) + ":" + std::to_string(o.steps->second));
  if (stream.gpu_recorded) meta("cupti.dropped_records", std::to_string(stream.gpu_dropped));
  writer->setStatus(o.status, o.error, stream.end_ns);
  writer->finish();
  writer.reset();  // closes the file (and folds the WAL back in) before it moves
  output.commit();
  return summary;
}

std::optional<std::pair<int32_t, int32_t>> parseStepRange(std::string_view text, std::string& error) {
  const size_t colon = text.find(':');
  auto number = [](std::string_view t, int32_t& v) {
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return ec == std::errc() && end == t.data() + t.size() && v >= 0;
  };
  int32_t a = 0, b = 0;
  if (colon == std::string_view::npos || !number(text.substr(0, colon), a) ||
      !number(text.substr(colon + 1), b)) {
    error = "steps '" + std::string(text) + "': expected A:B, two step numbers (0 or more)";
    return std::nullopt;
  }
  if (a > b) {
    error = "steps '" + std::string(text) + "': the first step is after the last";
    return std::nullopt;
  }
  return std::pair{a, b};
}

void markRunFailed(const std::filesystem::path& run, const std::string& reason) {
  sqlite::Db db(run, SQLITE_OPEN_READWRITE);
  sqlite::Stmt st(db,
                  "UPDATE run SET status = ?1, error = CASE WHEN coalesce(error, '') = '' THEN ?2 ELSE error "
                  "|| '; ' || ?2 "
                  "END WHERE id = 1");
  st.bind(1, static_cast<int32_t>(RunStatus::Failed));
  st.bind(2, reason);
  st.run();
}

}  // namespace moescope::storage
