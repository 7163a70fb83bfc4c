#include "storage/shard_read.h"

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "base/run_tasks.h"
#include "storage/run_reader.h"

namespace moescope::storage {

Trace loadShards(const std::vector<std::filesystem::path>& files) {
  const std::vector<ShardInfo> shards = readShards(files);
  const MergeReport summary = summarizeShards(shards);
  // Each shard's own load reads with two threads once it is large (RunReader::kParallelLoadRows).
  std::vector<Trace> parts(shards.size());
  for (size_t i = 0; i < shards.size(); ++i) parts[i] = RunReader::open(shards[i].file)->load();

  Trace out;
  out.run = parts.front().run;
  out.run.status = summary.status;
  out.run.error = summary.error;
  std::unordered_map<std::string, uint32_t> names;
  int64_t spanIds = 0;
  bool haveStart = false;
  for (size_t p = 0; p < parts.size(); ++p) {
    Trace& part = parts[p];
    const ClockCorrection& clock = shards[p].clock;
    const bool shifted = !(clock == ClockCorrection{.source = clock.source});
    auto time = [&](int64_t t) { return shifted ? clock.apply(t) : t; };
    std::vector<uint32_t> nameOf(part.strings.size());
    for (size_t k = 0; k < part.strings.size(); ++k) {
      auto [it, fresh] = names.try_emplace(part.strings[k], static_cast<uint32_t>(out.strings.size()));
      if (fresh) out.strings.push_back(part.strings[k]);
      nameOf[k] = it->second;
    }
    auto name = [&](uint32_t id) { return id < nameOf.size() ? nameOf[id] : id; };
    const auto trackBase = static_cast<int32_t>(out.tracks.size());
    for (TrackInfo& t : part.tracks) {
      t.id += trackBase;
      out.tracks.push_back(std::move(t));
    }
    for (SpanColumns& c : part.spans) {
      for (uint32_t& n : c.name) n = name(n);
      if (shifted) {
        for (int64_t& s : c.start) s = clock.apply(s);
      }
      out.spans.push_back(std::move(c));
    }
    out.gpuInSpans += part.gpuInSpans;
    for (GpuActivityRecord& g : part.gpu) {
      g.track += trackBase;
      g.start = time(g.start);
      g.end = time(g.end);
      g.name = name(g.name);
      if (g.span >= 0) g.span += spanIds;
      out.gpu.push_back(g);
    }
    for (LinkedSpan& l : part.linked) {
      l.id += spanIds;
      l.span.track += trackBase;
      l.span.start = time(l.span.start);
      l.span.end = time(l.span.end);
      l.span.name = name(l.span.name);
      out.linked.push_back(l);
    }
    for (CounterSample& c : part.counters) {
      c.track += trackBase;
      c.time = time(c.time);
      out.counters.push_back(c);
    }
    for (StepMetric& m : part.steps) {
      if (std::any_of(out.steps.begin(), out.steps.end(),
                      [&](const StepMetric& o) { return o.step == m.step; }))
        continue;
      m.start_ns = time(m.start_ns);
      m.end_ns = time(m.end_ns);
      out.steps.push_back(m);
    }
    for (RankInfo& r : part.ranks) out.ranks.push_back(std::move(r));
    for (MoeRouting& m : part.routing) out.routing.push_back(std::move(m));
    for (auto& [key, value] : part.meta) {
      if (p == 0 && key.rfind("shard.", 0) != 0 && key.rfind("clock.", 0) != 0)
        out.meta.emplace_back(key, value);
    }
    for (int32_t r : shards[p].ranks) {
      out.meta.emplace_back(rankMetaKey(r, "process"), std::to_string(shards[p].index));
      out.meta.emplace_back(rankMetaKey(r, kClockOffsetKey), std::to_string(clock.offset_ns));
      out.meta.emplace_back(rankMetaKey(r, kClockDriftKey), std::to_string(clock.drift_ppb));
      out.meta.emplace_back(rankMetaKey(r, kClockUncertaintyKey), std::to_string(clock.uncertainty_ns));
      out.meta.emplace_back(rankMetaKey(r, kClockSourceKey), clock.source);
    }
    const int64_t start = time(part.run.start_ns);
    out.run.start_ns = haveStart ? std::min(out.run.start_ns, start) : start;
    haveStart = true;
    if (part.run.end_ns > 0) out.run.end_ns = std::max(out.run.end_ns, time(part.run.end_ns));
    spanIds += part.loaded.span + 1;
  }
  out.meta.emplace_back(std::string(kRunProcessesKey), std::to_string(summary.processes));
  std::sort(out.meta.begin(), out.meta.end());
  // Each routing group as the file keeps it: once, in (step, micro-batch, layer, replica) order; a group
  // that two processes both recorded counts once, as the merge's primary key keeps it.
  const auto key = [](const MoeRouting& m) { return std::tuple(m.step, m.microbatch, m.layer, m.replica); };
  std::stable_sort(out.routing.begin(), out.routing.end(),
                   [&](const MoeRouting& a, const MoeRouting& b) { return key(a) < key(b); });
  out.routing.erase(std::unique(out.routing.begin(), out.routing.end(),
                                [&](const MoeRouting& a, const MoeRouting& b) { return key(a) == key(b); }),
                    out.routing.end());
  out.loaded.span = spanIds - 1;
  // Clock corrections move spans without reordering a track's own (one shift per track, and a drift
  // of parts per million); finishTrace sorts what else needs it.
  std::vector<size_t> sorted;
  for (const SpanColumns& c : out.spans) sorted.push_back(c.size());
  finishTrace(out, sorted);
  return out;
}

}  // namespace moescope::storage
