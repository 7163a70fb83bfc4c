// The planner's acceptance grid on the CPU backend: calibrated on one run (samples/schedules-pp4.toml,
// 8 layers, at 1F1B, pp 2, 4 micro-batches), predictions for GPipe, 1F1B, interleaved (v 2) and
// ZB-H1 at pp 2 and 4 with 2 and 8 micro-batches (interleaved pp 4 with 2 micro-batches breaks
// Megatron's rule m % pp == 0: 15 configurations) against real runs of each: step time within 15% and
// bubble share within 5 points for at least 80% of them.
//
// How it keeps noise out: step times are medians of the steps after the first, every span's cost in
// the model a mean without its top tenth, and the planner takes the cores the calibration run
// actually got from the run itself (cost_model.h). What it cannot keep out is a change in the host's
// load between the calibration run and a target's run: on the shared 2-core development VM at load
// average 10 to 15 (other builds) a run's speed moved by 30% from one minute to the next, and the
// grid came out 7 of 15 (bench/planner/grid.py) and 6 of 15 (this test, when it scaled each
// prediction by a neighbouring run of the calibration's configuration; the load changes within
// seconds, so that did not help and is gone). docs/PLANNER.md has both tables. On a quiet host:
// bench/planner/run_h200_grid.sh runs it on the GPU server's idle CPU cores.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/sample_path.h"
#include "tests/common/temp_dir.h"

namespace {

namespace fs = std::filesystem;

const std::string kCli = std::string(MOESCOPE_BINARY_DIR) + "/bin/moescope-cli";
constexpr int kSteps = 3;

class PlannerGrid : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = std::make_unique<moescope::testing::TempDir>("planner-grid"); }

  std::string run(const std::string& args) {
    const fs::path out = dir_->file("out.log");
    const std::string cmd = "'" + kCli + "' " + args + " > '" + out.string() + "' 2> /dev/null";
    const int status = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd;
    std::ifstream in(out);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  fs::path train(const std::string& name, const std::string& schedule, int pp, int m) {
    const fs::path path = dir_->file(name + ".moescope");
    run("train --backend cpu --config '" + moescope::testing::samplePath("schedules-pp4.toml").string() +
        "' --steps " + std::to_string(kSteps) + " --out '" + path.string() +
        "' --set parallel.schedule=" + schedule + " --set parallel.pp=" + std::to_string(pp) +
        " --set parallel.microbatches=" + std::to_string(m) +
        " --set parallel.virtual_stages=" + (schedule == "interleaved" ? "2" : "1"));
    return path;
  }
  // compare's figures of one run: median step time (steps after the first) and bubble share.
  std::pair<double, double> figures(const fs::path& path) {
    const auto j =
        nlohmann::json::parse(run("compare --json '" + path.string() + "' '" + path.string() + "'"));
    return {j["runs"][0]["step_ns"].get<double>(), j["runs"][0]["bubble_share"].get<double>()};
  }

  std::unique_ptr<moescope::testing::TempDir> dir_;
};

TEST_F(PlannerGrid, PredictsEverySchedulesStepAndBubbleFromOneCpuRun) {
  const fs::path calibration = train("calibration", "1f1b", 2, 4);
  struct Point {
    std::string schedule;
    int pp, m;
  };
  std::vector<Point> grid;
  for (const char* s : {"gpipe", "1f1b", "interleaved", "zb-h1"})
    for (int pp : {2, 4})
      for (int m : {2, 8})
        if (std::string(s) != "interleaved" || m % pp == 0) grid.push_back({s, pp, m});
  ASSERT_EQ(grid.size(), 15u);
  int good = 0;
  std::string table = "schedule     pp  m  predicted ms  measured ms   error  bubble pred/real\n";
  for (const Point& p : grid) {
    const std::string name = p.schedule + "-pp" + std::to_string(p.pp) + "-m" + std::to_string(p.m);
    const auto [realStep, realBubble] = figures(train(name, p.schedule, p.pp, p.m));
    const fs::path predicted = dir_->file(name + "-predicted.moescope");
    run("plan '" + calibration.string() + "' --schedule " + p.schedule + " --pp " + std::to_string(p.pp) +
        " --microbatches " + std::to_string(p.m) + " --steps " + std::to_string(kSteps) + " --out '" +
        predicted.string() + "' -q");
    const auto [predictedStep, predictedBubble] = figures(predicted);
    const double error = predictedStep / realStep - 1;
    const bool ok = std::abs(error) <= 0.15 && std::abs(predictedBubble - realBubble) <= 0.05;
    good += ok;
    char line[200];
    std::snprintf(line, sizeof line, "%-12s %2d %2d  %12.1f %12.1f  %6.1f%%  %5.1f%% / %5.1f%%  %s\n",
                  p.schedule.c_str(), p.pp, p.m, predictedStep / 1e6, realStep / 1e6, 100 * error,
                  100 * predictedBubble, 100 * realBubble, ok ? "ok" : "off");
    table += line;
  }
  std::printf("%s%d of 15 within 15%% and 5 points\n", table.c_str(), good);
  EXPECT_GE(good, 12) << table;
}

}  // namespace
