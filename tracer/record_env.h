// What `moescope-cli record` tells the processes it starts, through their environment, and how a
// recorded process learns its rank. Written in one place for both sides: the CLI builds the variables
// with recordEnvironment(), the injection library (tracer/inject/) reads them back with
// readRecordSettings(), which refuses a value it cannot read with a message naming the variable.
//
//   MOESCOPE_RECORD_DIR       the shards folder (RUN.moescope.shards)
//   MOESCOPE_RECORD_RUN_ID    the run's id, the same in every shard (shard.run_id)
//   MOESCOPE_RECORD_RULES     naming rules files, one path a line, before the shipped sets
//   MOESCOPE_RECORD_LAYOUT    "pp,tp,dp,order,schedule", e.g. "2,1,1,tp-dp-pp,1f1b"
//   MOESCOPE_RECORD_STEPS     "A:B", or empty for every step
//   MOESCOPE_RECORD_NVTX      1 | 0: NVTX ranges recorded
//   MOESCOPE_RECORD_KERNELS   1 | 0: CUPTI's kernels, copies, memsets and launch calls recorded
//   MOESCOPE_RECORD_LAUNCHES  activity | callbacks | off: how launch calls are recorded (with kernels)
//   MOESCOPE_RECORD_COMMAND   the command line, for the run's meta
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moescope::tracer {

// How the injection library records the calls that launch GPU work (tracer/gpu/cupti_collector.h,
// LaunchCalls): CUPTI's activity records of those calls (the default, the cheapest), a callback of the
// library's at each one, or not at all (kernels are then not tied to the ranges that launched them).
enum class LaunchCallRecording { Activity, Callbacks, Off };
// "activity", "callbacks", "off": the values of MOESCOPE_RECORD_LAUNCHES and `record --launch-calls`.
const char* launchCallRecordingName(LaunchCallRecording r);
std::optional<LaunchCallRecording> launchCallRecordingFromName(std::string_view name);

struct RecordSettings {
  std::string dir;
  std::string run_id;
  std::vector<std::string> rules;
  int32_t pp = 1, tp = 1, dp = 1;
  std::string order = "tp-dp-pp";
  std::string schedule = "1f1b";
  std::optional<std::pair<int32_t, int32_t>> steps;
  bool nvtx = true;
  bool kernels = true;
  LaunchCallRecording launchCalls = LaunchCallRecording::Activity;
  std::string command;
  bool operator==(const RecordSettings&) const = default;
};

using GetEnv = std::function<const char*(const char*)>;

// The variables to set, in a fixed order.
std::vector<std::pair<std::string, std::string>> recordEnvironment(const RecordSettings& settings);
// Nothing when MOESCOPE_RECORD_DIR is unset (the library was loaded outside `record`). Throws
// std::invalid_argument naming the variable and the problem.
std::optional<RecordSettings> readRecordSettings(const GetEnv& getenv);

// The rank a launcher gave the process: torchrun's RANK and WORLD_SIZE, Open MPI's
// OMPI_COMM_WORLD_RANK/SIZE, PMI's PMI_RANK/SIZE, Slurm's SLURM_PROCID/NTASKS, in that order.
struct LaunchRank {
  std::optional<int32_t> rank, world;
  std::string source;  // the variable the rank came from; empty if none
  bool operator==(const LaunchRank&) const = default;
};
LaunchRank launchRank(const GetEnv& getenv);

}  // namespace moescope::tracer
