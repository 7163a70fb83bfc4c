// moescope-cli compare, run as a user runs it: two generated runs side by side, ratios to the chosen
// baseline, the JSON and CSV forms, and bad input (a file that is not a run, a single run, a baseline
// out of range): one line and exit 2.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/common/binary_path.h"
#include "tests/common/temp_dir.h"

namespace {

namespace fs = std::filesystem;

const std::string kCli = moescope::testing::binaryPath("moescope-cli").string();

struct Result {
  int code = -1;
  std::string out, err;
};

class CliCompare : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = std::make_unique<moescope::testing::TempDir>("cli-compare");
    dir_ = temp_->path();
    // Two layouts of one synthetic model: 2 and 4 pipeline stages.
    ASSERT_EQ(run("generate -o pp2.moescope --stages 2 --microbatches 4 --spans 3000").code, 0);
    ASSERT_EQ(run("generate -o pp4.moescope --stages 4 --microbatches 4 --spans 3000").code, 0);
    std::ofstream(dir_ / "not-a-run.moescope") << "plain text";
  }
  static void TearDownTestSuite() { temp_.reset(); }

  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static Result run(const std::string& args) {
    const std::string cmd = "cd '" + dir_.string() + "' && '" + kCli + "' " + args + " > out.log 2> err.log";
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read(dir_ / "out.log");
    r.err = read(dir_ / "err.log");
    return r;
  }
  static const nlohmann::json& row(const nlohmann::json& table, const std::string& key) {
    for (const auto& r : table["rows"]) {
      if (r["key"] == key) return r;
    }
    static const nlohmann::json none;
    ADD_FAILURE() << "no row " << key;
    return none;
  }

  static inline std::unique_ptr<moescope::testing::TempDir> temp_;
  static inline fs::path dir_;
};

TEST_F(CliCompare, RatiosAreToTheBaseline) {
  const Result r = run("compare pp2.moescope pp4.moescope --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto table = nlohmann::json::parse(r.out);
  EXPECT_EQ(table["baseline"], 0);
  for (const char* key : {"step_time", "tokens_per_s", "bubble_share"}) {
    const auto& values = row(table, key)["values"];
    const auto& ratios = row(table, key)["ratios"];
    ASSERT_EQ(values.size(), 2u) << key;
    EXPECT_DOUBLE_EQ(ratios[0].get<double>(), 1.0) << key;
    EXPECT_NEAR(ratios[1].get<double>(), values[1].get<double>() / values[0].get<double>(), 1e-12) << key;
  }
  // Four stages over the same micro-batches idle more: (p-1)/(m+p-1) is 3/7 against 1/5.
  const auto& bubble = row(table, "bubble_share")["values"];
  EXPECT_GT(bubble[1].get<double>(), bubble[0].get<double>());
  EXPECT_FALSE(table["largest"].empty());

  const Result swapped = run("compare pp2.moescope pp4.moescope --json --baseline 1");
  ASSERT_EQ(swapped.code, 0) << swapped.err;
  const auto again = nlohmann::json::parse(swapped.out);
  const auto& ratios = row(again, "step_time")["ratios"];
  EXPECT_DOUBLE_EQ(ratios[1].get<double>(), 1.0);
  EXPECT_NEAR(ratios[0].get<double>() * row(table, "step_time")["ratios"][1].get<double>(), 1.0, 1e-12);
}

TEST_F(CliCompare, TableAndCsvNameEveryRun) {
  const Result text = run("compare pp2.moescope pp4.moescope");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("step time"), std::string::npos) << text.out;
  const Result csv = run("compare pp2.moescope pp4.moescope --csv");
  ASSERT_EQ(csv.code, 0) << csv.err;
  std::istringstream lines(csv.out);
  std::string header;
  std::getline(lines, header);
  EXPECT_NE(header.find("pp2"), std::string::npos) << header;
  EXPECT_NE(header.find("pp4"), std::string::npos) << header;
  int rows = 0;
  for (std::string line; std::getline(lines, line);) rows += !line.empty();
  EXPECT_GE(rows, 3);
}

TEST_F(CliCompare, BadInputIsOneLineAndExitTwo) {
  for (const char* args :
       {"compare pp2.moescope not-a-run.moescope", "compare pp2.moescope",
        "compare pp2.moescope pp4.moescope --baseline 2", "compare pp2.moescope missing.moescope"}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << args << "\n" << r.out;
  }
}

}  // namespace
