#include "storage/stats_report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "storage/activity.h"
#include "storage/report_text.h"
#include "storage/saturating.h"

namespace moescope::storage {

namespace {

// Per stage: busy by category (mean per step), bubbles over all steps, overlap.
std::vector<StageStats> stageStats(const std::vector<RankActivity>& ranks,
                                   const std::vector<StageStepBubble>& perStep) {
  std::map<int32_t, StageStats> stages;
  std::map<int32_t, int32_t> stepsSeen;
  for (const StageStepBusy& b : busyByStageStep(ranks)) {
    if (b.step == kNone) continue;
    StageStats& st = stages[b.stage];
    st.stage = b.stage;
    st.ranks = b.ranks;
    for (size_t c = 0; c < st.busy_per_step.ns.size(); ++c) addTo(st.busy_per_step.ns[c], b.busy.ns[c]);
    addTo(st.busy_ns_per_step, b.busy_ns);
    ++stepsSeen[b.stage];
  }
  for (auto& [stage, st] : stages) {
    const int32_t n = stepsSeen[stage];
    for (int64_t& v : st.busy_per_step.ns) v /= n;
    st.busy_ns_per_step /= n;
  }
  for (const StageStepBubble& b : bubblesPerStage(perStep)) {
    StageStats& st = stages[b.stage];
    st.stage = b.stage;
    st.ranks = b.ranks;
    st.bubble = b;
  }
  for (const OverlapStats& o : overlapByStage(ranks)) {
    StageStats& st = stages[o.stage];
    st.stage = o.stage;
    st.overlap = o;
  }
  std::vector<StageStats> out;
  for (auto& [stage, st] : stages) out.push_back(st);
  return out;
}

}  // namespace

RunStats computeStats(const Trace& trace) {
  RunStats s;
  s.run = trace.run;
  s.spans = static_cast<int64_t>(trace.spanCount());
  const std::vector<RankActivity> ranks = hostActivity(trace);
  const std::vector<StepExtent> extents = stepExtents(ranks);
  s.steps = stepTimes(extents, trace.run, trace.steps);
  s.step_summary = summarizeSteps(s.steps);
  s.bubbles_per_step = bubbles(ranks, trace.run);
  s.communication = communicationByKind(ranks);
  s.overlap = overlapOfRun(ranks);
  s.stages = stageStats(ranks, s.bubbles_per_step);
  for (const StagePeak& p : peakActivationPerStage(trace)) {
    for (StageStats& st : s.stages)
      if (st.stage == p.stage) st.peak_activation_bytes = p.bytes;
  }
  for (const StagePeak& p : peakDeviceMemoryPerStage(trace)) {
    for (StageStats& st : s.stages)
      if (st.stage == p.stage) st.peak_device_memory_bytes = p.bytes;
  }
  s.peak_device_memory_bytes = peakDeviceMemory(trace);
  s.waits = waitsReport(trace);
  s.clocks = rankClocks(trace);
  s.gpu_records = gpuRecordCounts(trace);
  if (!trace.gpu.empty()) {
    const std::vector<RankActivity> gpu = gpuActivity(trace);
    s.gpu_stages = stageStats(gpu, bubbles(gpu, trace.run));
    s.gpu_overlap = overlapOfRun(gpu);
    s.gpu_kernels = kernelTotals(trace);
  }
  s.moe = analyzeMoe(trace);
  return s;
}

namespace {

nlohmann::json waitsToJson(const WaitsReport& w) {
  using nlohmann::json;
  json j{{"total_ns", w.total_ns}, {"attributed_ns", w.attributed_ns}};
  j["ranks"] = json::array();
  for (const RankWaits& r : w.ranks) {
    json byCategory = json::object();
    for (int c = 0; c < kCategoryCount; ++c) {
      if (r.by_category[static_cast<size_t>(c)] != 0)
        byCategory[std::string(categoryName(static_cast<Category>(c)))] =
            r.by_category[static_cast<size_t>(c)];
    }
    json on = json::array();
    for (const auto& [peer, ns] : r.on) {
      json o{{"ns", ns}};
      o["rank"] = peer == kNone ? json(nullptr) : json(peer);
      on.push_back(o);
    }
    j["ranks"].push_back(
        {{"rank", r.rank}, {"waited_ns", r.waited_ns}, {"by_category_ns", byCategory}, {"on", on}});
  }
  j["stragglers"] = json::array();
  for (const Straggler& s : w.stragglers)
    j["stragglers"].push_back({{"rank", s.rank}, {"caused_ns", s.caused_ns}, {"share", s.share}});
  return j;
}

}  // namespace

nlohmann::json statsToJson(const RunStats& s) {
  using nlohmann::json;
  auto categories = [](const CategoryTimes& t) {
    json j = json::object();
    for (int c = 0; c < kCategoryCount; ++c) {
      if (t.ns[static_cast<size_t>(c)] != 0)
        j[std::string(categoryName(static_cast<Category>(c)))] = t.ns[static_cast<size_t>(c)];
    }
    return j;
  };
  auto overlap = [](const OverlapStats& o) {
    return json{{"comm_ns", o.comm_ns},
                {"compute_ns", o.compute_ns},
                {"overlap_ns", o.overlap_ns},
                {"ratio", o.ratio}};
  };
  auto bubble = [](const StageStepBubble& b) {
    json j{{"stage", b.stage},
           {"ranks", b.ranks},
           {"extent_ns", b.extent_ns},
           {"bubble_ns", b.bubble_ns},
           {"max_bubble_ns", b.max_bubble_ns},
           {"share", b.share},
           {"theoretical_share", b.theoretical_share}};
    if (b.step != kNone) j["step"] = b.step;
    return j;
  };
  json j;
  j["run"] = {{"name", s.run.name},
              {"layout", s.run.layout},
              {"backend", s.run.backend},
              {"devices", s.run.devices},
              {"status", runStatusName(s.run.status)},
              {"error", s.run.error},
              {"pp", s.run.pp},
              {"tp", s.run.tp},
              {"dp", s.run.dp},
              {"microbatches", s.run.microbatches},
              {"schedule", scheduleName(s.run.schedule)},
              {"predicted", s.run.predicted},
              {"virtual_stages", s.run.virtual_stages},
              {"theoretical_bubble_share", theoreticalBubbleShare(s.run)},
              {"spans", s.spans}};
  j["stages"] = json::array();
  for (const StageStats& st : s.stages) {
    json stage{{"stage", st.stage},
               {"ranks", st.ranks},
               {"busy_ns_per_step", st.busy_ns_per_step},
               {"busy_by_category_ns_per_step", categories(st.busy_per_step)},
               {"bubble", bubble(st.bubble)},
               {"overlap", overlap(st.overlap)}};
    if (st.peak_activation_bytes > 0) stage["peak_activation_bytes"] = st.peak_activation_bytes;
    if (st.peak_device_memory_bytes > 0) stage["peak_device_memory_bytes"] = st.peak_device_memory_bytes;
    j["stages"].push_back(stage);
  }
  j["bubbles_per_step"] = json::array();
  for (const StageStepBubble& b : s.bubbles_per_step) j["bubbles_per_step"].push_back(bubble(b));
  j["steps"] = json::array();
  for (const StepTime& t : s.steps) {
    j["steps"].push_back({{"step", t.step},
                          {"duration_ns", t.duration_ns},
                          {"tokens", t.tokens},
                          {"tokens_per_s", t.tokens_per_s}});
  }
  j["step_summary"] = {{"steps", s.step_summary.steps},
                       {"median_ns", s.step_summary.median_ns},
                       {"mean_ns", s.step_summary.mean_ns},
                       {"tokens_per_s", s.step_summary.tokens_per_s}};
  if (s.peak_device_memory_bytes > 0) j["peak_device_memory_bytes"] = s.peak_device_memory_bytes;
  j["communication"] = json::array();
  for (const CommStats& c : s.communication) {
    j["communication"].push_back({{"kind", categoryName(c.kind)},
                                  {"time_ns", c.time_ns},
                                  {"count", c.count},
                                  {"bytes", c.bytes},
                                  {"gbytes_per_s", c.gbytes_per_s}});
  }
  j["overlap"] = overlap(s.overlap);
  j["waits"] = waitsToJson(s.waits);
  if (!s.clocks.empty()) {
    j["clocks"] = json::array();
    for (const RankClock& c : s.clocks) {
      j["clocks"].push_back({{"rank", c.rank},
                             {"process", c.process},
                             {"offset_ns", c.offset_ns},
                             {"drift_ppb", c.drift_ppb},
                             {"uncertainty_ns", c.uncertainty_ns},
                             {"source", c.source}});
    }
  }
  if (s.gpu_records.records > 0 || !s.gpu_stages.empty()) {
    json gpu;
    gpu["records"] = s.gpu_records.records;
    gpu["unlinked"] = s.gpu_records.unlinked;
    if (s.gpu_records.dropped != kNone) gpu["dropped"] = s.gpu_records.dropped;
    gpu["stages"] = json::array();
    for (const StageStats& st : s.gpu_stages) {
      gpu["stages"].push_back({{"stage", st.stage},
                               {"ranks", st.ranks},
                               {"busy_ns_per_step", st.busy_ns_per_step},
                               {"busy_by_category_ns_per_step", categories(st.busy_per_step)},
                               {"bubble", bubble(st.bubble)},
                               {"overlap", overlap(st.overlap)}});
    }
    gpu["overlap"] = overlap(s.gpu_overlap);
    gpu["kernels"] = json::array();
    for (const KernelTotal& k : s.gpu_kernels) {
      gpu["kernels"].push_back({{"name", k.name},
                                {"kind", std::string(gpuActivityKindName(k.kind))},
                                {"count", k.count},
                                {"total_ns", k.total_ns},
                                {"min_ns", k.min_ns},
                                {"max_ns", k.max_ns},
                                {"share", k.share}});
    }
    j["gpu"] = gpu;
  }
  if (!s.moe.empty()) j["moe"] = moeStatsToJson(s.moe);
  return j;
}

namespace {

using report_text::format;

using report_text::ms;

constexpr size_t kKernelsShown = 15;  // rows of the text table's kernel summary
double ms(double ns) {
  return ns / 1e6;
}

// Busy per step by category as rows, stages as columns; only the categories that occur.
std::string busyTable(const std::vector<StageStats>& stages) {
  std::string out;
  std::vector<int> used;
  for (int c = 0; c < kCategoryCount; ++c) {
    for (const StageStats& st : stages) {
      if (st.busy_per_step.ns[static_cast<size_t>(c)] != 0) {
        used.push_back(c);
        break;
      }
    }
  }
  out += format("%-20s", "category");
  for (const StageStats& st : stages) out += format(" %10s", ("stage " + std::to_string(st.stage)).c_str());
  out += "\n";
  for (int c : used) {
    out += format("%-20s", std::string(categoryName(static_cast<Category>(c))).c_str());
    for (const StageStats& st : stages)
      out += format(" %10.3f", ms(st.busy_per_step.ns[static_cast<size_t>(c)]));
    out += "\n";
  }
  return out;
}

std::string formatGpuStats(const RunStats& s) {
  std::string out;
  out += format("\nGPU records %lld (%lld without a span", static_cast<long long>(s.gpu_records.records),
                static_cast<long long>(s.gpu_records.unlinked));
  if (s.gpu_records.dropped != kNone)
    out += format(", %lld dropped by CUPTI", static_cast<long long>(s.gpu_records.dropped));
  out += ")\n";
  if (s.gpu_stages.empty()) return out;
  out += "GPU time per step by category (ms, the work each span launched, mean over the stage's ranks)\n";
  out += busyTable(s.gpu_stages);
  out += format("%-20s", "GPU busy");
  for (const StageStats& st : s.gpu_stages) out += format(" %10.3f", ms(st.busy_ns_per_step));
  out += "\n";
  out += format("%-20s", "GPU idle share");
  for (const StageStats& st : s.gpu_stages) out += format(" %9.1f%%", 100 * st.bubble.share);
  out += "\n";
  out += format("%-20s", "GPU comm overlap");
  for (const StageStats& st : s.gpu_stages) out += format(" %9.1f%%", 100 * st.overlap.ratio);
  out += "\n";
  if (s.gpu_kernels.empty()) return out;
  const size_t shown = std::min<size_t>(s.gpu_kernels.size(), kKernelsShown);
  out += format("\nGPU time by kernel, all ranks (%zu of %zu names; the JSON has them all)\n", shown,
                s.gpu_kernels.size());
  out += format("%12s %8s %10s %10s %7s  %s\n", "total ms", "count", "mean us", "max us", "share", "name");
  for (size_t i = 0; i < shown; ++i) {
    const KernelTotal& k = s.gpu_kernels[i];
    out += format("%12.3f %8lld %10.1f %10.1f %6.1f%%  ", ms(k.total_ns), static_cast<long long>(k.count),
                  static_cast<double>(k.total_ns) / static_cast<double>(k.count) / 1e3,
                  static_cast<double>(k.max_ns) / 1e3, 100 * k.share);
    out += k.name + "\n";  // names can be longer than format's buffer
  }
  return out;
}

// Per stage, the peaks its ranks recorded (largest rank and step): saved activations at the step's worst
// moment, and the device memory the engine held; a column only where some stage recorded it.
std::string formatPeakMemory(const std::vector<StageStats>& stages) {
  const bool activations = std::any_of(stages.begin(), stages.end(),
                                       [](const StageStats& st) { return st.peak_activation_bytes > 0; });
  const bool device = std::any_of(stages.begin(), stages.end(),
                                  [](const StageStats& st) { return st.peak_device_memory_bytes > 0; });
  if (!activations && !device) return "";
  std::string out = "\npeak memory per stage (MiB, largest rank and step):";
  if (activations) out += " activations saved at the step's worst moment;";
  if (device) out += " device memory the engine held;";
  out.back() = '\n';
  out += format("%-6s", "stage");
  if (activations) out += format(" %12s", "activations");
  if (device) out += format(" %12s", "device");
  out += "\n";
  constexpr double kMiB = 1 << 20;
  for (const StageStats& st : stages) {
    out += format("%-6d", st.stage);
    if (activations) out += format(" %12.3f", static_cast<double>(st.peak_activation_bytes) / kMiB);
    if (device) out += format(" %12.3f", static_cast<double>(st.peak_device_memory_bytes) / kMiB);
    out += "\n";
  }
  return out;
}

// Who waited for whom, the stragglers, and each rank's clock alignment.
std::string formatWaits(const RunStats& s) {
  std::string out;
  const WaitsReport& w = s.waits;
  if (w.total_ns > 0) {
    out +=
        "\nwaits (ms over the run, by the rank that held each wait up: the last to arrive or the sender,\n"
        "followed along chains of ranks that were waiting themselves)\n";
    out += format("%-6s %12s  %s\n", "rank", "waited ms", "on ranks");
    for (const RankWaits& r : w.ranks) {
      std::string on;
      std::vector<std::pair<int64_t, int32_t>> sorted;
      for (const auto& [peer, ns] : r.on) sorted.emplace_back(ns, peer);
      std::sort(sorted.rbegin(), sorted.rend());
      for (const auto& [ns, peer] : sorted) {
        on += (on.empty() ? "" : ", ") + (peer == kNone ? std::string("unknown") : std::to_string(peer)) +
              format(" %.3f", ms(ns));
      }
      out += format("%-6d %12.3f  ", r.rank, ms(r.waited_ns)) + on + "\n";
    }
    out += format("%-20s", "waited in");
    for (const RankWaits& r : w.ranks) out += format(" %9s", ("rank " + std::to_string(r.rank)).c_str());
    out += "\n";
    for (int c = 0; c < kCategoryCount; ++c) {
      const auto cat = static_cast<size_t>(c);
      if (std::none_of(w.ranks.begin(), w.ranks.end(),
                       [&](const RankWaits& r) { return r.by_category[cat] != 0; }))
        continue;
      out += format("%-20s", std::string(categoryName(static_cast<Category>(c))).c_str());
      for (const RankWaits& r : w.ranks) out += format(" %9.3f", ms(r.by_category[cat]));
      out += "\n";
    }
    if (!w.stragglers.empty()) {
      out += "stragglers (the others' waiting each caused)\n";
      out += format("%-6s %12s %8s\n", "rank", "caused ms", "share");
      for (const Straggler& st : w.stragglers)
        out += format("%-6d %12.3f %7.1f%%\n", st.rank, ms(st.caused_ns), 100 * st.share);
    }
  }
  if (!s.clocks.empty()) {
    out += "\nclock alignment per rank (onto rank 0's clock)\n";
    out += format("%-6s %8s %14s %14s %12s  %s\n", "rank", "process", "offset us", "uncertainty us",
                  "drift ppb", "source");
    for (const RankClock& c : s.clocks) {
      out +=
          format("%-6d %8d %14.3f %14.3f %12.1f  ", c.rank, c.process, static_cast<double>(c.offset_ns) / 1e3,
                 static_cast<double>(c.uncertainty_ns) / 1e3, c.drift_ppb) +
          c.source + "\n";
    }
  }
  return out;
}

}  // namespace

std::string formatStats(const RunStats& s) {
  std::string out;
  out += format("run      %s (%s, %s, %s)\n", s.run.name.c_str(), s.run.layout.c_str(), s.run.backend.c_str(),
                std::string(runStatusName(s.run.status)).c_str());
  if (!s.run.error.empty()) out += "error    " + s.run.error + "\n";
  if (s.run.predicted) out += "PREDICTED by moescope-cli plan from " + s.run.calibration + ": not measured\n";
  out += format("layout   pp %d x tp %d x dp %d, %d micro-batches, %s", s.run.pp, s.run.tp, s.run.dp,
                s.run.microbatches, std::string(scheduleName(s.run.schedule)).c_str());
  if (s.run.schedule == Schedule::Interleaved) out += format(" (%d virtual stages)", s.run.virtual_stages);
  out += format(", theoretical bubble %.1f%%\n", 100 * theoreticalBubbleShare(s.run));
  out += format("spans    %lld\n", static_cast<long long>(s.spans));
  out += format("steps    %d, median %.3f ms, mean %.3f ms, %.0f tokens/s\n", s.step_summary.steps,
                ms(s.step_summary.median_ns), ms(s.step_summary.mean_ns), s.step_summary.tokens_per_s);
  if (s.peak_device_memory_bytes > 0) {
    out += "memory   peak " + report_text::memory(static_cast<double>(s.peak_device_memory_bytes)) +
           " on one device (the engine's own allocations, largest rank)\n";
  }
  out += "\n";

  if (s.stages.empty()) {
    out += "no spans with a step in this run";
    out += s.run.status == RunStatus::Running ? " (yet: it is still running)\n" : "\n";
    return out;
  }
  // Busy by category: only the categories that occur.
  std::vector<int> used;
  for (int c = 0; c < kCategoryCount; ++c) {
    for (const StageStats& st : s.stages) {
      if (st.busy_per_step.ns[static_cast<size_t>(c)] != 0) {
        used.push_back(c);
        break;
      }
    }
  }
  // Categories as rows, stages as columns: a terminal has more lines than columns.
  out += "busy per step by category (ms, mean over the stage's ranks)\n";
  out += format("%-20s", "category");
  for (const StageStats& st : s.stages) out += format(" %10s", ("stage " + std::to_string(st.stage)).c_str());
  out += "\n";
  for (int c : used) {
    out += format("%-20s", std::string(categoryName(static_cast<Category>(c))).c_str());
    for (const StageStats& st : s.stages)
      out += format(" %10.3f", ms(st.busy_per_step.ns[static_cast<size_t>(c)]));
    out += "\n";
  }
  out += format("%-20s", "busy (all but wait)");
  for (const StageStats& st : s.stages) out += format(" %10.3f", ms(st.busy_ns_per_step));
  out += "\n";
  out += "\nbubbles over all steps (time not covered by any span but `wait`)\n";
  out += format("%-6s %12s %12s %10s %12s %16s\n", "stage", "extent ms", "bubble ms", "share", "theoretical",
                "worst rank ms");
  for (const StageStats& st : s.stages) {
    out += format("%-6d %12.3f %12.3f %9.1f%% %11.1f%% %16.3f\n", st.stage, ms(st.bubble.extent_ns),
                  ms(st.bubble.bubble_ns), 100 * st.bubble.share, 100 * st.bubble.theoretical_share,
                  ms(st.bubble.max_bubble_ns));
  }
  out += formatPeakMemory(s.stages);
  out += "\ncompute-communication overlap (overlapped / communication time)\n";
  out += format("%-6s %12s %12s %10s\n", "stage", "comm ms", "overlap ms", "ratio");
  for (const StageStats& st : s.stages) {
    out += format("%-6d %12.3f %12.3f %9.1f%%\n", st.stage, ms(st.overlap.comm_ns), ms(st.overlap.overlap_ns),
                  100 * st.overlap.ratio);
  }
  out += format("%-6s %12.3f %12.3f %9.1f%%\n", "run", ms(s.overlap.comm_ns), ms(s.overlap.overlap_ns),
                100 * s.overlap.ratio);
  if (s.gpu_records.records > 0) out += formatGpuStats(s);
  out += formatWaits(s);
  out += formatMoeStats(s.moe);
  if (!s.communication.empty()) {
    out += "\ncommunication by kind (all ranks)\n";
    out += format("%-18s %12s %10s %14s %10s\n", "kind", "time ms", "count", "MiB", "GB/s");
    for (const CommStats& c : s.communication) {
      out += format("%-18s %12.3f %10lld %14.1f %10.2f\n", std::string(categoryName(c.kind)).c_str(),
                    ms(c.time_ns), static_cast<long long>(c.count), static_cast<double>(c.bytes) / (1 << 20),
                    c.gbytes_per_s);
    }
  }
  return out;
}

}  // namespace moescope::storage
