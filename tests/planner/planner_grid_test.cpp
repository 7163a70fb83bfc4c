// The planner's acceptance grid on the CPU backend: calibrated on one run (samples/schedules-pp4.toml,
// 8 layers, at 1F1B, pp 2, 4 micro-batches, with parallel.split_backward so that it measures each
// backward's B and W apart for ZB-H1), predictions for GPipe, 1F1B, interleaved (v 2) and
// ZB-H1 at pp 2 and 4 with 2 and 8 micro-batches (interleaved pp 4 with 2 micro-batches breaks
// Megatron's rule m % pp == 0: 15 configurations) against real runs of each: step time within 15% and
// bubble share within 5 points for at least 80% of them.
//
// The measurement: each configuration runs MOESCOPE_GRID_REPEAT times (default 3), the repetitions
// of the whole grid one after another so that a drift of the host spreads over every configuration,
// the calibration run too (first in each repetition; the planner takes its run of median step time),
// each run MOESCOPE_GRID_STEPS steps (default 6); its step time is the median of its steps after the
// first (compare's), and a configuration's the median over its repetitions. The log shows every
// repetition and their spread, the cores the runs may use and what the planner took from the
// calibration, and the load average before and after, so that a bad grid says whether the host or
// the model was at fault. The predictions are made twice from the same runs: with the planner's
// default (time slices, the slice fitted from the calibration: planner/host_scheduler.h), which the
// verdict takes, and with processor sharing (--slice-ms 0), so that the two host models are compared
// on one measurement. MOESCOPE_GRID_KEEP=DIR keeps the run files there (calibration-R.moescope,
// SCHEDULE-ppP-mM-R.moescope); MOESCOPE_GRID_REUSE=DIR predicts from such a folder without running
// anything (the planner's models compared on runs measured once). With 3 steps and one run each, on the GPU
// server's CPU pinned to 2 cores, configurations that do the same work measured 486 and 771 ms a step
// (docs/PLANNER.md).
//
// Not in ctest: on the shared 2-core development VM (load average 5 to 15, other builds) a run gets
// 28 to 60% of the two cores and its speed moves by a factor of 2 within a minute; no measurement of
// wall-clock step time there is good to 15%. bench/planner/run_h200_grid.sh runs it on the GPU
// server's idle CPU cores.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>

#include <algorithm>
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

#include "tests/common/binary_path.h"
#include "tests/common/sample_path.h"
#include "tests/common/temp_dir.h"

namespace {

namespace fs = std::filesystem;

const std::string kCli = moescope::testing::binaryPath("moescope-cli").string();

int setting(const char* name, int fallback) {
  const char* v = std::getenv(name);
  const int n = v ? std::atoi(v) : 0;
  return n > 0 ? n : fallback;
}
const int kSteps = setting("MOESCOPE_GRID_STEPS", 6);
const int kRepeat = setting("MOESCOPE_GRID_REPEAT", 3);

unsigned usableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof set, &set) == 0 ? static_cast<unsigned>(CPU_COUNT(&set)) : 0;
}

// The usable cores' time in /proc/stat (USER_HZ ticks): all of it, and what the hypervisor took for
// other guests (steal, the 8th value). A run that got less of its cores than the clock says shows here.
struct CoreTicks {
  uint64_t total = 0, steal = 0;
};
CoreTicks usableCoreTicks() {
  cpu_set_t set;
  CPU_ZERO(&set);
  CoreTicks t;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return t;
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    int cpu = -1;
    if (std::sscanf(line.c_str(), "cpu%d", &cpu) != 1 || cpu < 0 || cpu >= CPU_SETSIZE ||
        !CPU_ISSET(cpu, &set))
      continue;
    std::istringstream fields(line.substr(line.find(' ')));
    uint64_t v = 0;
    for (int i = 0; i < 8 && fields >> v; ++i) {
      t.total += v;
      if (i == 7) t.steal += v;
    }
  }
  return t;
}

std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

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
  fs::path train(const fs::path& path, const std::string& schedule, int pp, int m, bool split = false) {
    fs::remove(path);  // a kept grid's run of an earlier call (MOESCOPE_GRID_KEEP)
    run("train --backend cpu --config '" + moescope::testing::samplePath("schedules-pp4.toml").string() +
        "' --steps " + std::to_string(kSteps) + " --out '" + path.string() +
        "' --set parallel.schedule=" + schedule + " --set parallel.pp=" + std::to_string(pp) +
        " --set parallel.microbatches=" + std::to_string(m) +
        " --set parallel.virtual_stages=" + (schedule == "interleaved" ? "2" : "1") +
        " --set parallel.split_backward=" + (split ? "true" : "false"));
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

// One way of sharing the host's cores in the prediction: the arguments `plan` gets for it.
struct HostModel {
  std::string name, args;
};

TEST_F(PlannerGrid, PredictsEverySchedulesStepAndBubbleFromOneCpuRun) {
  const char* reuse = std::getenv("MOESCOPE_GRID_REUSE");
  const char* keep = std::getenv("MOESCOPE_GRID_KEEP");
  if (keep) fs::create_directories(keep);
  const fs::path runs = reuse ? fs::path(reuse) : keep ? fs::path(keep) : dir_->path();
  const int repeat = [&] {
    if (!reuse) return kRepeat;
    int n = 0;
    while (fs::exists(runs / ("calibration-" + std::to_string(n) + ".moescope"))) ++n;
    return n;
  }();
  ASSERT_GT(repeat, 0) << "no calibration-0.moescope in " << runs;
  std::printf("grid: %d steps a run, %d repetitions; %u cores usable (affinity), load average %s%s%s\n",
              kSteps, repeat, usableCores(), loadAverage().c_str(), reuse ? "; the runs of " : "",
              reuse ? reuse : "");
  struct Point {
    std::string schedule;
    int pp, m;
    std::vector<double> steps, bubbles;
  };
  std::vector<Point> grid;
  for (const char* s : {"gpipe", "1f1b", "interleaved", "zb-h1"})
    for (int pp : {2, 4})
      for (int m : {2, 8})
        if (std::string(s) != "interleaved" || m % pp == 0) grid.push_back({s, pp, m, {}, {}});
  ASSERT_EQ(grid.size(), 15u);
  auto nameOf = [](const Point& p) {
    return p.schedule + "-pp" + std::to_string(p.pp) + "-m" + std::to_string(p.m);
  };
  // The calibration runs 1F1B's backwards as B then W: the same order and numbers, with ZB-H1's split
  // measured (the planner's "assumed: ZB-H1's B and W" line below reports it) instead of taken as 50/50.
  // It is measured as every configuration is: once in each repetition (first), and the planner takes
  // the run of median step time. One run alone can be an outlier of the host (on the GPU server's VM a
  // calibration ran 20% faster than its m 2 and m 8 neighbours, which do the same work, and every
  // prediction came out that much low).
  std::vector<std::pair<double, fs::path>> calibrations;
  std::vector<fs::path> calibrationOf;  // by repetition
  auto runOf = [&](const std::string& name, int r) {
    return runs / (name + "-" + std::to_string(r) + ".moescope");
  };
  for (int r = 0; r < repeat; ++r) {
    const CoreTicks before = usableCoreTicks();
    const fs::path c = reuse ? runOf("calibration", r) : train(runOf("calibration", r), "1f1b", 2, 4, true);
    const auto [step, bubble] = figures(c);
    calibrations.emplace_back(step, c);
    calibrationOf.push_back(c);
    std::printf("calibration %d: 1f1b pp 2 m 4, backward split: %.1f ms a step, bubble %.1f%%\n", r + 1,
                step / 1e6, 100 * bubble);
    std::fflush(stdout);
    for (Point& p : grid) {
      const fs::path path = reuse ? runOf(nameOf(p), r) : train(runOf(nameOf(p), r), p.schedule, p.pp, p.m);
      const auto [step, bubble] = figures(path);
      p.steps.push_back(step);
      p.bubbles.push_back(bubble);
      if (!reuse && !keep) fs::remove(path);
    }
    const CoreTicks after = usableCoreTicks();
    const double ticks = static_cast<double>(after.total - before.total);
    std::printf("repetition %d of %d done, load average %s, steal %.1f%% of the usable cores' time\n", r + 1,
                repeat, loadAverage().c_str(),
                ticks > 0 ? 100.0 * static_cast<double>(after.steal - before.steal) / ticks : 0.0);
    std::fflush(stdout);
  }
  std::sort(calibrations.begin(), calibrations.end());
  const fs::path calibration = calibrations[calibrations.size() / 2].second;
  std::printf("the planner calibrates on the run of median step time: %.1f ms\n",
              calibrations[calibrations.size() / 2].first / 1e6);
  // The planner's step time and bubble share for a configuration from a calibration run.
  auto predict = [&](const fs::path& from, const Point& p, const HostModel& host, const std::string& name,
                     std::string* said) {
    const fs::path predicted = dir_->file(name + "-predicted.moescope");
    const std::string out = run("plan '" + from.string() + "' --schedule " + p.schedule + " --pp " +
                                std::to_string(p.pp) + " --microbatches " + std::to_string(p.m) +
                                " --steps 3 " + host.args + " --out '" + predicted.string() + "'");
    if (said && said->empty()) *said = out;
    return figures(predicted);
  };
  // The default model is the verdict's; the other is predicted from the same runs beside it, so that
  // the two are compared on one measurement of a host that drifts from one call to the next.
  const std::vector<HostModel> models{{"time slices, a queue per core, the slice fitted (the default)", ""},
                                      {"processor sharing (--slice-ms 0)", "--slice-ms 0"}};
  int verdict = 0;
  std::string verdictTable;
  for (const HostModel& host : models) {
    int good = 0, goodStep = 0, goodBubble = 0;
    std::string table =
        "schedule     pp  m  predicted ms  measured ms   error  bubble pred/real      within   "
        "repetitions ms (spread)\n";
    std::string notes;
    for (const Point& p : grid) {
      const std::string name = nameOf(p);
      const auto [predictedStep, predictedBubble] = predict(calibration, p, host, name, &notes);
      const double realStep = median(p.steps), realBubble = median(p.bubbles);
      const double error = predictedStep / realStep - 1;
      const bool stepOk = std::abs(error) <= 0.15, bubbleOk = std::abs(predictedBubble - realBubble) <= 0.05;
      good += stepOk && bubbleOk;
      goodStep += stepOk;
      goodBubble += bubbleOk;
      std::string reps;
      for (double v : p.steps) reps += std::to_string(static_cast<int>(std::lround(v / 1e6))) + " ";
      const auto [lo, hi] = std::minmax_element(p.steps.begin(), p.steps.end());
      char line[300];
      std::snprintf(line, sizeof line,
                    "%-12s %2d %2d  %12.1f %12.1f  %6.1f%%  %5.1f%% / %5.1f%%  %-9s  %s(%.0f%%)\n",
                    p.schedule.c_str(), p.pp, p.m, predictedStep / 1e6, realStep / 1e6, 100 * error,
                    100 * predictedBubble, 100 * realBubble,
                    stepOk && bubbleOk ? "yes"
                    : stepOk           ? "no (bub)"
                    : bubbleOk         ? "no (step)"
                                       : "no (both)",
                    reps.c_str(), 100 * (*hi / *lo - 1));
      table += line;
    }
    std::printf("\nhost model: %s\nthe planner on the calibration: %s", host.name.c_str(), notes.c_str());
    std::printf(
        "%s%d of 15 within 15%% and 5 points (step times within 15%%: %d, bubbles within 5 points: %d); "
        "load average %s\n",
        table.c_str(), good, goodStep, goodBubble, loadAverage().c_str());
    // Informative, beside the verdict: the same runs paired by repetition, each repetition's
    // calibration against that repetition's own runs (made within the same minute or two, so a drift of
    // the host between repetitions moves both), a configuration's error the median over its repetitions.
    int paired = 0, pairedStep = 0, pairedBubble = 0;
    std::string pairs = "paired by repetition (errors of step time; bubble points, predicted - real):\n";
    for (const Point& p : grid) {
      std::vector<double> errors, bubbleMisses;
      std::string each;
      for (size_t r = 0; r < calibrationOf.size(); ++r) {
        const auto [step, bubble] =
            predict(calibrationOf[r], p, host, nameOf(p) + "-r" + std::to_string(r), nullptr);
        errors.push_back(step / p.steps[r] - 1);
        bubbleMisses.push_back(std::abs(bubble - p.bubbles[r]));
        each += std::to_string(static_cast<int>(std::lround(100 * errors.back()))) + "% " +
                std::to_string(static_cast<int>(std::lround(100 * (bubble - p.bubbles[r])))) + "p  ";
      }
      const double error = median(errors), bubbleMiss = median(bubbleMisses);
      pairedStep += std::abs(error) <= 0.15;
      pairedBubble += bubbleMiss <= 0.05;
      paired += std::abs(error) <= 0.15 && bubbleMiss <= 0.05;
      pairs += "  " + nameOf(p) + ": " + each + "\n";
    }
    std::printf("%s%d of 15 within 15%% and 5 points paired by repetition (step times: %d, bubbles: %d)\n",
                pairs.c_str(), paired, pairedStep, pairedBubble);
    std::fflush(stdout);
    if (&host == &models.front()) {
      verdict = good;
      verdictTable = table;
    }
  }
  EXPECT_GE(verdict, 12) << models.front().name << "\n" << verdictTable;
}

}  // namespace
