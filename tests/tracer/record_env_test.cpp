// The environment `record` gives the processes it starts: what the CLI writes the injection library
// reads back unchanged; a value it cannot read is refused naming the variable; ranks from launchers.
#include "tracer/record_env.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

namespace moescope::tracer {
namespace {

GetEnv from(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(RecordEnv, RoundTrip) {
  RecordSettings s;
  s.dir = "/tmp/run.moescope.shards";
  s.run_id = "123-abc";
  s.rules = {"/a/one.toml", "/b/two, with comma.toml"};
  s.pp = 4;
  s.tp = 2;
  s.dp = 3;
  s.order = "tp-pp-dp";
  s.schedule = "gpipe";
  s.steps = std::pair{5, 9};
  s.nvtx = false;
  s.kernels = true;
  s.launchCalls = LaunchCallRecording::Callbacks;
  s.command = "torchrun --nproc-per-node 2 train.py";
  std::map<std::string, std::string> vars;
  for (const auto& [k, v] : recordEnvironment(s)) vars[k] = v;
  EXPECT_EQ(readRecordSettings(from(vars)), s);
}

TEST(RecordEnv, LaunchCallRecordingByName) {
  for (auto r : {LaunchCallRecording::Activity, LaunchCallRecording::Callbacks, LaunchCallRecording::Off})
    EXPECT_EQ(launchCallRecordingFromName(launchCallRecordingName(r)), r);
  EXPECT_EQ(launchCallRecordingFromName("Activity"), std::nullopt);
  // Unset: CUPTI's activity records, the cheapest way.
  EXPECT_EQ(readRecordSettings(from({{"MOESCOPE_RECORD_DIR", "/x"}}))->launchCalls,
            LaunchCallRecording::Activity);
}

TEST(RecordEnv, OutsideRecordNothing) {
  EXPECT_EQ(readRecordSettings(from({})), std::nullopt);
}

TEST(RecordEnv, BadValuesNameTheVariable) {
  for (const auto& [variable, value] :
       std::map<std::string, std::string>{{"MOESCOPE_RECORD_LAYOUT", "2,1"},
                                          {"MOESCOPE_RECORD_STEPS", "9:2"},
                                          {"MOESCOPE_RECORD_NVTX", "yes"},
                                          {"MOESCOPE_RECORD_LAUNCHES", "all"}}) {
    try {
      readRecordSettings(from({{"MOESCOPE_RECORD_DIR", "/x"}, {variable, value}}));
      ADD_FAILURE() << variable << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(variable), std::string::npos) << e.what();
    }
  }
}

TEST(RecordEnv, LaunchRankInLauncherOrder) {
  EXPECT_EQ(launchRank(from({})), LaunchRank{});
  EXPECT_EQ(launchRank(from({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_RANK", "1"}})),
            (LaunchRank{3, 8, "RANK"}));
  EXPECT_EQ(launchRank(from({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}})),
            (LaunchRank{1, 2, "OMPI_COMM_WORLD_RANK"}));
  EXPECT_EQ(launchRank(from({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "6"}})),
            (LaunchRank{5, 6, "SLURM_PROCID"}));
  // A world size that cannot hold the rank is not taken.
  EXPECT_EQ(launchRank(from({{"RANK", "4"}, {"WORLD_SIZE", "2"}})), (LaunchRank{4, std::nullopt, "RANK"}));
  EXPECT_EQ(launchRank(from({{"RANK", "x"}, {"PMI_RANK", "2"}})), (LaunchRank{2, std::nullopt, "PMI_RANK"}));
}

}  // namespace
}  // namespace moescope::tracer
