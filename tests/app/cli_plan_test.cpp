// moescope-cli plan, run as a user runs it, calibrated on the GPU sample run: a prediction written as a
// run file that stats and compare call predicted, the sweep's ranked JSON, --help, and bad input (a
// tp that does not divide the heads, more stages than layers, a file that is not a run, a predicted
// run as calibration): one line, exit 2, nothing written.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/common/binary_path.h"
#include "tests/common/sample_path.h"
#include "tests/common/temp_dir.h"

namespace {

namespace fs = std::filesystem;

const std::string kCli = moescope::testing::binaryPath("moescope-cli").string();

struct Result {
  int code = -1;
  std::string out, err;
};

class CliPlan : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<moescope::testing::TempDir>("cli-plan");
    sample_ = moescope::testing::samplePath("ppmoe-tp2-h200.moescope").string();
  }
  std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  Result run(const std::string& args) {
    const std::string cmd =
        "cd '" + dir_->path().string() + "' && '" + kCli + "' " + args + " > out.log 2> err.log";
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read(dir_->file("out.log")),
            read(dir_->file("err.log"))};
  }
  void expectRefused(const std::string& args, const std::string& words) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(words), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_->file("pred.moescope")));
    EXPECT_FALSE(fs::exists(dir_->file("pred.moescope.partial")));
  }
  std::unique_ptr<moescope::testing::TempDir> dir_;
  std::string sample_;
};

TEST_F(CliPlan, WritesAPredictionThatStatsAndCompareCallPredicted) {
  const Result r = run("plan '" + sample_ + "' --schedule zb-h1 --pp 2 --out pred.moescope");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("predicted zb-h1 pp 2 tp 2 dp 1 m 4"), std::string::npos) << r.out;
  const Result stats = run("stats pred.moescope");
  ASSERT_EQ(stats.code, 0);
  EXPECT_NE(stats.out.find("PREDICTED by moescope-cli plan from " + sample_), std::string::npos) << stats.out;
  const Result json = run("stats --json pred.moescope");
  EXPECT_TRUE(nlohmann::json::parse(json.out)["run"]["predicted"].get<bool>());
  const Result compare = run("compare '" + sample_ + "' pred.moescope");
  ASSERT_EQ(compare.code, 0);
  EXPECT_NE(compare.out.find("PREDICTED, not measured"), std::string::npos) << compare.out;
  const auto c = nlohmann::json::parse(run("compare --json '" + sample_ + "' pred.moescope").out);
  EXPECT_FALSE(c["runs"][0]["predicted"].get<bool>());
  EXPECT_TRUE(c["runs"][1]["predicted"].get<bool>());
  // A prediction cannot calibrate another one.
  const Result again = run("plan pred.moescope --out pred2.moescope");
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.err.find("a predicted run cannot calibrate"), std::string::npos) << again.err;
}

TEST_F(CliPlan, SweepRanksByPredictedStepTime) {
  const Result r = run("plan '" + sample_ + "' --sweep --json --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_GE(j["rows"].size(), 6u);  // 3 schedules x micro-batches 1..16 at pp 1 tp 2
  for (size_t i = 1; i < j["rows"].size(); ++i)
    EXPECT_LE(j["rows"][i - 1]["step_ns"].get<int64_t>(), j["rows"][i]["step_ns"].get<int64_t>());
  EXPECT_FALSE(j["skipped"].empty());  // interleaved needs pp >= 2
  const Result table = run("plan '" + sample_ + "' --sweep");
  EXPECT_NE(table.out.find("step ms"), std::string::npos);
  EXPECT_NE(table.err.find("planned"), std::string::npos);  // progress
}

TEST_F(CliPlan, HelpNamesEveryOption) {
  const Result r = run("plan --help");
  EXPECT_EQ(r.code, 0);
  for (const char* option : {"--schedule", "--pp", "--microbatches", "--virtual-stages", "--layout", "--tp",
                             "--dp", "--out", "--sweep", "--json", "--cores", "--slice-ms"})
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
}

TEST_F(CliPlan, RefusesWhatTheModelCannotExpressInOneLine) {
  expectRefused("plan '" + sample_ + "' --tp 3 --out pred.moescope",
                "tp 3 does not divide the 4 attention heads");
  expectRefused("plan '" + sample_ + "' --pp 5 --out pred.moescope",
                "pp 5: more pipeline stages than the model's 4 layers");
  expectRefused("plan '" + sample_ + "' --schedule interleaved --pp 2 --microbatches 3 --out pred.moescope",
                "global batch 16 does not split");
  expectRefused("plan '" + sample_ + "' --schedule bogus --out pred.moescope", "--schedule bogus");
  expectRefused("plan '" + sample_ + "' --layout dpmoe --out pred.moescope", "the calibration run is ppmoe");
  std::ofstream(dir_->file("not-a-run.moescope")) << "plain text";
  expectRefused("plan not-a-run.moescope --out pred.moescope", "not-a-run.moescope");
  expectRefused("plan '" + sample_ + "'", "--out");
  expectRefused("plan '" + sample_ + "' --slice-ms 0.01 --out pred.moescope", "--slice-ms");
  expectRefused("plan '" + sample_ + "' --slice-ms -4 --out pred.moescope", "--slice-ms");
}

}  // namespace
