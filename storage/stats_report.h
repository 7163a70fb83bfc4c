// The summary `moescope-cli stats` prints, computed from a loaded run: per stage, busy time by
// category and bubbles (mean per step) beside the schedule's theoretical share, overlap, peak
// activation and device memory; per step, time and throughput; the run's device memory peak; communication by
// kind; for a run traced on GPUs, the same per-stage busy time, bubbles and overlap on GPU time (the
// kernels, copies and memsets each span launched, by the span's category) and the GPU records summed
// by kernel; per MoE layer, the load's imbalance, the dropped share and the waiting it caused. As plain data,
// as JSON and as a readable table, so the CLI and the GUI show the same numbers.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "storage/analysis_bubbles.h"
#include "storage/analysis_busy.h"
#include "storage/analysis_comm.h"
#include "storage/analysis_memory.h"
#include "storage/analysis_moe.h"
#include "storage/analysis_overlap.h"
#include "storage/analysis_steps.h"
#include "storage/analysis_waits.h"
#include "storage/gpu_time.h"
#include "storage/trace.h"

namespace moescope::storage {

struct StageStats {
  int32_t stage = 0;
  int32_t ranks = 0;
  CategoryTimes busy_per_step;  // mean over the steps of busyByStageStep
  int64_t busy_ns_per_step = 0;
  StageStepBubble bubble;  // summed over the steps (bubblesPerStage)
  OverlapStats overlap;
  int64_t peak_activation_bytes = 0;  // the largest of its ranks' peaks (analysis_memory.h); 0: none recorded
  int64_t peak_device_memory_bytes = 0;  // likewise of its ranks' device memory peaks
  bool operator==(const StageStats&) const = default;
};

struct RunStats {
  RunInfo run;
  int64_t spans = 0;
  std::vector<StageStats> stages;
  std::vector<StageStepBubble> bubbles_per_step;
  std::vector<StepTime> steps;
  StepSummary step_summary;
  int64_t peak_device_memory_bytes = 0;  // the run's (analysis_memory.h peakDeviceMemory); 0: not counted
  std::vector<CommStats> communication;
  OverlapStats overlap;
  // GPU time (runs with GPU records): stages as above, computed from gpuActivity.
  GpuRecordCounts gpu_records;
  std::vector<StageStats> gpu_stages;
  OverlapStats gpu_overlap;
  std::vector<KernelTotal> gpu_kernels;  // every record, summed by name, the largest total first
  WaitsReport waits;                     // who waited for whom (analysis_waits.h)
  std::vector<RankClock> clocks;         // per rank, a run recorded by several processes
  MoeStats moe;                          // routing per MoE layer and its waiting (empty without MoE)
  bool operator==(const RunStats&) const = default;
};

RunStats computeStats(const Trace& trace);
nlohmann::json statsToJson(const RunStats& stats);
// Aligned text tables for a terminal.
std::string formatStats(const RunStats& stats);

}  // namespace moescope::storage
