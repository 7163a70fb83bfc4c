#include "storage/analysis_compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "storage/activity.h"
#include "storage/analysis_bubbles.h"
#include "storage/analysis_memory.h"
#include "storage/analysis_moe.h"
#include "storage/analysis_steps.h"
#include "storage/report_text.h"
#include "storage/saturating.h"
#include "storage/text_writer.h"

namespace moescope::storage {

RunSummary summarizeRun(const Trace& trace) {
  RunSummary s;
  s.name = trace.run.name;
  s.layout = trace.run.layout;
  s.predicted = trace.run.predicted;
  s.schedule = std::string(scheduleName(trace.run.schedule));
  if (trace.run.schedule == Schedule::Interleaved)
    s.schedule += " (v " + std::to_string(trace.run.virtual_stages) + ")";
  s.theoretical_bubble_share = theoreticalBubbleShare(trace.run);
  s.peak_activation_bytes = peakActivation(trace);
  s.peak_device_memory_bytes = peakDeviceMemory(trace);
  const std::vector<RankActivity> ranks = hostActivity(trace);
  s.ranks = static_cast<int32_t>(ranks.size());
  std::vector<StepTime> steps = stepTimes(stepExtents(ranks), trace.run, trace.steps);
  if (steps.size() > 1) {
    s.skipped_step = steps.front().step;
    steps.erase(steps.begin());
  }
  const StepSummary summary = summarizeSteps(steps);
  s.steps = summary.steps;
  s.step_ns = summary.median_ns;
  s.tokens_per_s = summary.tokens_per_s;
  auto measured = [&](int32_t step) { return step != kNone && step != s.skipped_step; };

  int64_t bubble = 0, extent = 0;
  for (const StageStepBubble& b : bubbles(ranks, trace.run)) {
    if (!measured(b.step)) continue;
    addTo(bubble, b.bubble_ns);
    addTo(extent, b.extent_ns);
  }
  s.bubble_share = extent > 0 ? static_cast<double>(bubble) / static_cast<double>(extent) : 0;

  // A stage row is the mean over its ranks: weigh it back by its ranks to sum over every rank.
  if (s.ranks > 0 && s.steps > 0) {
    CategoryTimes total;
    for (const StageStepBusy& b : busyByStageStep(ranks)) {
      if (!measured(b.step)) continue;
      for (size_t c = 0; c < total.ns.size(); ++c) addTo(total.ns[c], saturatingMul(b.busy.ns[c], b.ranks));
    }
    const int64_t divisor = saturatingMul(s.ranks, s.steps);
    for (size_t c = 0; c < total.ns.size(); ++c) s.busy_per_step.ns[c] = total.ns[c] / divisor;
  }
  const MoeStats moe = analyzeMoe(trace);
  if (!moe.empty()) {
    s.moe = true;
    s.moe_imbalance = moe.imbalance;
    s.moe_dropped_share = moe.dropped_share;
    if (s.ranks > 0 && moe.steps > 0) s.moe_imbalance_wait_ns = moe.imbalance_wait_ns / (s.ranks * moe.steps);
    for (const MoeLayerStats& l : moe.layers) s.moe_layer_imbalance.emplace_back(l.layer, l.imbalance);
  }
  return s;
}

namespace {

using report_text::ms;

}  // namespace

Comparison compareRuns(std::span<const RunSummary> runs, size_t baseline, size_t topN, double minWeight) {
  Comparison c;
  c.runs.assign(runs.begin(), runs.end());
  c.baseline = runs.empty() ? 0 : std::min(baseline, runs.size() - 1);
  if (runs.empty()) return c;
  const double baseStep = ms(runs[c.baseline].step_ns);

  auto addRow = [&](std::string key, std::string label, CompareUnit unit, auto&& value,
                    bool measured = true) {
    CompareRow row{std::move(key), std::move(label), unit, {}, {}, {}};
    for (const RunSummary& r : runs) row.values.push_back(value(r));
    const double base = row.values[c.baseline];
    for (size_t i = 0; i < runs.size(); ++i) {
      const double v = row.values[i];
      row.ratios.push_back(base != 0 ? v / base : 0);
      double w = 0;
      if (i != c.baseline && measured && hasValue(row, i) && hasValue(row, c.baseline)) {
        if (unit == CompareUnit::Milliseconds && row.key != "step_time")
          w = baseStep > 0 ? std::fabs(v - base) / baseStep : 0;
        else if (unit == CompareUnit::Share)
          w = std::fabs(v - base);
        else
          w = base != 0 ? std::fabs(v / base - 1) : 0;
      }
      row.weights.push_back(w);
    }
    c.rows.push_back(std::move(row));
  };
  addRow("step_time", "step time (median)", CompareUnit::Milliseconds,
         [](const RunSummary& r) { return ms(r.step_ns); });
  addRow("tokens_per_s", "tokens/s", CompareUnit::TokensPerSecond,
         [](const RunSummary& r) { return r.tokens_per_s; });
  addRow("bubble_share", "bubble share", CompareUnit::Share,
         [](const RunSummary& r) { return r.bubble_share; });
  addRow(
      "theoretical_bubble_share", "bubble share, theoretical", CompareUnit::Share,
      [](const RunSummary& r) { return r.theoretical_bubble_share; }, false);
  if (std::any_of(runs.begin(), runs.end(),
                  [](const RunSummary& r) { return r.peak_activation_bytes > 0; })) {
    addRow("peak_activation", "peak activation memory", CompareUnit::Bytes,
           [](const RunSummary& r) { return static_cast<double>(r.peak_activation_bytes); });
  }
  if (std::any_of(runs.begin(), runs.end(),
                  [](const RunSummary& r) { return r.peak_device_memory_bytes > 0; })) {
    addRow("peak_device_memory", "peak device memory", CompareUnit::Bytes,
           [](const RunSummary& r) { return static_cast<double>(r.peak_device_memory_bytes); });
  }
  for (int i = 0; i < kCategoryCount; ++i) {
    const auto cat = static_cast<Category>(i);
    const bool used =
        std::any_of(runs.begin(), runs.end(), [&](const RunSummary& r) { return r.busy_per_step[cat] != 0; });
    if (!used) continue;
    std::string name(categoryName(cat));
    std::string label = name;
    label.append(" per step");
    addRow(name, std::move(label), CompareUnit::Milliseconds,
           [cat](const RunSummary& r) { return ms(r.busy_per_step[cat]); });
  }

  if (std::any_of(runs.begin(), runs.end(), [](const RunSummary& r) { return r.moe; })) {
    addRow("moe_imbalance", "MoE imbalance (max/mean)", CompareUnit::Ratio,
           [](const RunSummary& r) { return r.moe_imbalance; });
    addRow("moe_dropped_share", "MoE dropped share", CompareUnit::Share,
           [](const RunSummary& r) { return r.moe_dropped_share; });
    addRow("moe_imbalance_wait", "MoE wait from imbalance per step", CompareUnit::Milliseconds,
           [](const RunSummary& r) { return ms(r.moe_imbalance_wait_ns); });
    std::vector<int32_t> layers;
    for (const RunSummary& r : runs)
      for (const auto& [layer, imbalance] : r.moe_layer_imbalance) layers.push_back(layer);
    std::sort(layers.begin(), layers.end());
    layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    for (int32_t layer : layers) {
      addRow("moe_imbalance.L" + std::to_string(layer), "  layer " + std::to_string(layer) + " imbalance",
             CompareUnit::Ratio, [layer](const RunSummary& r) {
               for (const auto& [l, imbalance] : r.moe_layer_imbalance)
                 if (l == layer) return imbalance;
               return 0.0;
             });
    }
  }

  for (size_t row = 0; row < c.rows.size(); ++row) {
    for (size_t run = 0; run < runs.size(); ++run) {
      const double w = c.rows[row].weights[run];
      if (run != c.baseline && w >= minWeight) c.largest.push_back({row, run, w});
    }
  }
  std::stable_sort(
      c.largest.begin(), c.largest.end(),
      [](const CompareDifference& a, const CompareDifference& b) { return a.weight > b.weight; });
  if (c.largest.size() > topN) c.largest.resize(topN);
  return c;
}

bool hasValue(const CompareRow& row, size_t run) {
  return row.unit != CompareUnit::Bytes || (run < row.values.size() && row.values[run] != 0);
}

bool isLargestDifference(const Comparison& c, size_t row, size_t run) {
  return std::any_of(c.largest.begin(), c.largest.end(),
                     [&](const CompareDifference& d) { return d.row == row && d.run == run; });
}

namespace {

std::string_view unitName(CompareUnit u) {
  switch (u) {
    case CompareUnit::Milliseconds:
      return "ms";
    case CompareUnit::TokensPerSecond:
      return "tokens/s";
    case CompareUnit::Share:
      return "share";
    case CompareUnit::Bytes:
      return "bytes";
    case CompareUnit::Ratio:
      return "ratio";
  }
  return "";
}

using report_text::format;

std::string formatValue(CompareUnit u, double v) {
  switch (u) {
    case CompareUnit::Milliseconds:
      return format("%.3f ms", v);
    case CompareUnit::TokensPerSecond:
      return format("%.0f tok/s", v);
    case CompareUnit::Share:
      return format("%.1f%%", 100 * v);
    case CompareUnit::Bytes:
      return report_text::memory(v);
    case CompareUnit::Ratio:
      return format("%.2f", v);
  }
  return {};
}

// "-" where the baseline's value is 0: no ratio.
std::string formatRatio(double ratio, double base) {
  return base != 0 ? format("x%.2f", ratio) : std::string("-");
}

}  // namespace

nlohmann::json comparisonToJson(const Comparison& c) {
  using nlohmann::json;
  json j;
  j["baseline"] = c.baseline;
  j["runs"] = json::array();
  for (const RunSummary& r : c.runs) {
    json busy = json::object();
    for (int i = 0; i < kCategoryCount; ++i) {
      const auto cat = static_cast<Category>(i);
      if (r.busy_per_step[cat] != 0) busy[std::string(categoryName(cat))] = r.busy_per_step[cat];
    }
    json run{{"name", r.name},
             {"layout", r.layout},
             {"schedule", r.schedule},
             {"predicted", r.predicted},
             {"theoretical_bubble_share", r.theoretical_bubble_share},
             {"ranks", r.ranks},
             {"steps", r.steps},
             {"step_ns", r.step_ns},
             {"tokens_per_s", r.tokens_per_s},
             {"bubble_share", r.bubble_share},
             {"busy_ns_per_step", busy}};
    if (r.peak_activation_bytes > 0) run["peak_activation_bytes"] = r.peak_activation_bytes;
    if (r.peak_device_memory_bytes > 0) run["peak_device_memory_bytes"] = r.peak_device_memory_bytes;
    if (r.skipped_step != kNone) run["skipped_step"] = r.skipped_step;
    if (r.moe) {
      run["moe"] = {{"imbalance", r.moe_imbalance},
                    {"dropped_share", r.moe_dropped_share},
                    {"imbalance_wait_ns_per_step", r.moe_imbalance_wait_ns}};
    }
    j["runs"].push_back(run);
  }
  j["rows"] = json::array();
  for (const CompareRow& row : c.rows) {
    j["rows"].push_back({{"key", row.key},
                         {"label", row.label},
                         {"unit", unitName(row.unit)},
                         {"values", row.values},
                         {"ratios", row.ratios},
                         {"weights", row.weights}});
  }
  j["largest"] = json::array();
  for (const CompareDifference& d : c.largest) {
    j["largest"].push_back({{"key", c.rows[d.row].key},
                            {"run", c.runs[d.run].name},
                            {"run_index", d.run},
                            {"weight", d.weight}});
  }
  return j;
}

std::string comparisonToCsv(const Comparison& c) {
  std::ostringstream s;
  {
    TextWriter w(s);
    w.raw("key,label,unit");
    for (const RunSummary& r : c.runs) w.put(',').csvField(r.name).put(',').csvField(r.name + " ratio");
    w.put('\n');
    for (const CompareRow& row : c.rows) {
      w.csvField(row.key).put(',').csvField(row.label).put(',').csvField(unitName(row.unit));
      for (size_t i = 0; i < row.values.size(); ++i)
        w.put(',').real(row.values[i]).put(',').real(row.ratios[i]);
      w.put('\n');
    }
  }
  return s.str();
}

std::string formatComparison(const Comparison& c) {
  std::string out;
  if (c.runs.empty()) return out;
  out += format("baseline: %s\n", c.runs[c.baseline].name.c_str());
  for (const RunSummary& r : c.runs) {
    out += format("  %-20s %-6s %-18s %2d ranks, %d steps measured", r.name.c_str(), r.layout.c_str(),
                  r.schedule.c_str(), r.ranks, r.steps);
    if (r.skipped_step != kNone) out += format(" (warm-up step %d left out)", r.skipped_step);
    if (r.predicted) out += " PREDICTED, not measured";
    out += "\n";
  }
  out += "\n";
  out += format("%-30s", "");
  for (const RunSummary& r : c.runs) out += format(" %24s", r.name.substr(0, 24).c_str());
  out += "\n";
  for (size_t row = 0; row < c.rows.size(); ++row) {
    const CompareRow& cr = c.rows[row];
    out += format("%-30s", cr.label.c_str());
    for (size_t run = 0; run < cr.values.size(); ++run) {
      const bool has = hasValue(cr, run);
      const std::string value = has ? formatValue(cr.unit, cr.values[run]) : std::string("-");
      const std::string ratio =
          run != c.baseline && has ? formatRatio(cr.ratios[run], cr.values[c.baseline]) : std::string();
      out += format(" %24s", format("%s%s%s%s", isLargestDifference(c, row, run) ? "*" : "", value.c_str(),
                                    ratio.empty() ? "" : " ", ratio.c_str())
                                 .c_str());
    }
    out += "\n";
  }
  out += "\nratios to the baseline (x); time by category is per step on the mean rank\n";
  if (!c.largest.empty()) {
    out += "largest differences (*), by the change against the baseline (times: against its step time):\n";
    for (const CompareDifference& d : c.largest) {
      const CompareRow& cr = c.rows[d.row];
      out += format("  %-28s %-20s %s against %s (%.1f%%)\n", cr.label.c_str(), c.runs[d.run].name.c_str(),
                    formatValue(cr.unit, cr.values[d.run]).c_str(),
                    formatValue(cr.unit, cr.values[c.baseline]).c_str(), 100 * d.weight);
    }
  }
  return out;
}

}  // namespace moescope::storage
