// `plan --sweep`: predictions over a small grid of configurations of the calibration run's world size
// (schedule x pipeline stages x micro-batches, dp = world / (pp x tp)), ranked by predicted step time,
// with bubble share, tokens/s and peak activation memory, as a table or JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "planner/cost_model.h"
#include "planner/plan_target.h"

namespace moescope::planner {

// An axis left empty takes every value that fits: the four schedules, every pp dividing world / tp
// (at most the layers), micro-batches 1, 2, 4, ... 64 that split the global batch.
struct SweepAxes {
  std::vector<storage::Schedule> schedules;
  std::vector<int> pp, microbatches;
  int tp = 0;              // 0: the calibration run's
  int virtual_stages = 2;  // for interleaved
  int steps = 3;
  bool operator==(const SweepAxes&) const = default;
};

struct SweepRow {
  PlanTarget target;
  int64_t step_ns = 0;  // median of the steps after the first
  double bubble_share = 0;
  double tokens_per_s = 0;
  int64_t peak_activation_bytes = 0;  // the largest stage's; 0 when the calibration run recorded none
  bool operator==(const SweepRow&) const = default;
};

struct SweepResult {
  std::vector<SweepRow> rows;        // fastest first
  std::vector<std::string> skipped;  // "interleaved pp 4 ... : why", targets the model cannot express
  bool operator==(const SweepResult&) const = default;
};

std::vector<PlanTarget> sweepTargets(const CostModel& model, const SweepAxes& axes,
                                     std::vector<std::string>& skipped);

// progress(done, total) after each prediction.
SweepResult sweep(const CostModel& model, const SweepAxes& axes,
                  const std::function<void(size_t, size_t)>& progress = {});

// The figures of one prediction, as `compare` reads a run (storage's summarizeRun).
SweepRow summarize(const PlanTarget& target, const storage::Trace& predicted);

std::string formatSweep(const SweepResult& result);
nlohmann::json sweepToJson(const SweepResult& result);

}  // namespace moescope::planner
