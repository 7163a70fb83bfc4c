// Runs side by side: step time, tokens/s, bubble share and time by category (communication by kind
// among them), with ratios to a baseline run and the largest differences called out. What
// `moescope-cli compare` prints and the GUI's compare view shows.
//
// Steady state only: when a run has more than one step, its first step (the lowest step number) is
// left out of every figure, since it pays for warm-up (allocation, first-touch, caches) that the
// other steps do not.
//
// - step time: the median extent of the measured steps (analysis_steps.h; the lower middle for an
//   even count);
// - tokens/s: the measured steps' tokens over their summed extents;
// - bubble share: the stages' bubbles over their extents, summed over stages and measured steps
//   (analysis_bubbles.h), beside the schedule's theoretical share;
// - peak activation memory: the largest stage's (analysis_memory.h), where the run recorded it;
// - peak device memory: the most the engine's allocations held on one device over the whole run,
//   warm-up included (analysis_memory.h peakDeviceMemory), where the backend counted it (CUDA);
// - time by category: per step on the mean rank: a category's busy time (the union of its spans on
//   a rank in a step, analysis_busy.h) summed over every rank and measured step, then divided by the
//   number of ranks and of measured steps. Communication time by kind is the comm.* rows;
// - MoE routing (runs that recorded it, analysis_moe.h; every step): the imbalance (max / mean, mean
//   over layers), the dropped share, the waiting at the MoE layers' collectives caused by imbalance per
//   step on the mean rank, and each layer's imbalance.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <vector>

#include "storage/analysis_busy.h"
#include "storage/trace.h"

namespace moescope::storage {

// One run's figures, as above.
struct RunSummary {
  std::string name;
  std::string layout;
  std::string schedule;    // "1f1b", "interleaved (v 2)", ...
  bool predicted = false;  // a run the planner predicted (RunInfo::predicted)
  int32_t ranks = 0;
  int32_t steps = 0;             // measured steps
  int32_t skipped_step = kNone;  // the warm-up step left out, kNone if none
  int64_t step_ns = 0;           // median
  double tokens_per_s = 0;
  double bubble_share = 0;               // 0..1
  double theoretical_bubble_share = 0;   // the schedule's, 0..1
  int64_t peak_activation_bytes = 0;     // 0: not recorded
  int64_t peak_device_memory_bytes = 0;  // 0: not counted
  CategoryTimes busy_per_step;           // ns on the mean rank
  bool moe = false;                      // recorded its routing
  double moe_imbalance = 0, moe_dropped_share = 0;
  int64_t moe_imbalance_wait_ns = 0;                            // per step on the mean rank
  std::vector<std::pair<int32_t, double>> moe_layer_imbalance;  // (layer, imbalance)
  bool operator==(const RunSummary&) const = default;
};

RunSummary summarizeRun(const Trace& trace);

enum class CompareUnit : uint8_t { Milliseconds, TokensPerSecond, Share, Bytes, Ratio };

// A row of the table: one figure for every run.
struct CompareRow {
  // "step_time", "tokens_per_s", "bubble_share", "theoretical_bubble_share", "peak_activation",
  // "peak_device_memory", a category name, "moe_imbalance", "moe_dropped_share", "moe_imbalance_wait",
  // "moe_imbalance.L<layer>"
  std::string key;
  std::string label;  // "step time (median)", ...
  CompareUnit unit = CompareUnit::Milliseconds;
  std::vector<double> values;  // per run, in unit (ms, tokens/s, share 0..1)
  // Per run, value over the baseline's; 0 where the baseline's value is 0 (no ratio).
  std::vector<double> ratios;
  // Per run, how much the difference to the baseline weighs: the change as a share of the
  // baseline's step time (time rows: |delta| / baseline step; bubble share: |delta|; step time,
  // tokens/s and memory: |ratio - 1|). 0 for the baseline itself and for the theoretical share (not a
  // measurement).
  std::vector<double> weights;
  bool operator==(const CompareRow&) const = default;
};

struct CompareDifference {
  size_t row = 0;  // index into Comparison::rows
  size_t run = 0;  // index into Comparison::runs
  double weight = 0;
  bool operator==(const CompareDifference&) const = default;
};

struct Comparison {
  size_t baseline = 0;
  std::vector<RunSummary> runs;
  // step time, tokens/s, bubble share, theoretical bubble share, peak activation memory and peak device
  // memory (each when any run recorded it), then categories in order, then the MoE rows (when any run
  // recorded its routing)
  std::vector<CompareRow> rows;
  // The heaviest differences, heaviest first: at most topN, each weighing at least minWeight.
  std::vector<CompareDifference> largest;
  bool operator==(const Comparison&) const = default;
};

inline constexpr double kMinDifferenceWeight = 0.01;

// Categories appear as rows when any run spends time in them. baseline must index runs.
Comparison compareRuns(std::span<const RunSummary> runs, size_t baseline = 0, size_t topN = 3,
                       double minWeight = kMinDifferenceWeight);

// Whether a run has a value in a row: a memory row's 0 is a run that did not record it, shown as a
// dash without a ratio and never among the largest differences.
bool hasValue(const CompareRow& row, size_t run);

// Whether (row, run) is one of the comparison's largest differences.
bool isLargestDifference(const Comparison& c, size_t row, size_t run);

nlohmann::json comparisonToJson(const Comparison& c);
// One line per row: key, label, unit, then value and ratio per run ("name value", "name ratio").
std::string comparisonToCsv(const Comparison& c);
// Aligned text for a terminal, the largest differences listed under the table.
std::string formatComparison(const Comparison& c);

}  // namespace moescope::storage
