// moescope-cli import, run as a user runs it: the hand-written two-stage traces into a run that stats
// reads as a pipeline, notes for what was odd, and bad input (not JSON, not Kineto, truncated gzip,
// traces of different runs, a bad rules file, a layout that does not fit): one line, exit 2, and nothing
// left in the output's folder.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/common/binary_path.h"
#include "tests/common/temp_dir.h"

namespace {

namespace fs = std::filesystem;

const std::string kCli = moescope::testing::binaryPath("moescope-cli").string();
const std::string kData = std::string(MOESCOPE_SOURCE_DIR) + "/tests/storage/kineto/";

struct Result {
  int code = -1;
  std::string out, err;
};

class CliImport : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_ / "out"); }

  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  Result run(const std::string& args) const {
    const std::string cmd =
        "cd '" + dir_.string() + "' && '" + kCli + "' " + args + " > stdout.log 2> stderr.log";
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read(dir_ / "stdout.log");
    r.err = read(dir_ / "stderr.log");
    return r;
  }
  // Files in the output folder.
  size_t outputs() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir_ / "out"), {}));
  }

  moescope::testing::TempDir temp_{"cli-import"};
  fs::path dir_ = temp_.path();
};

TEST_F(CliImport, TwoRanksIntoOnePipelineRun) {
  const Result r =
      run("import " + kData + "pp2-rank0.json " + kData + "pp2-rank1.json -o out/pp2.moescope --pp 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(
      r.out.find("wrote 2 ranks (pp 2, tp 1, dp 1), 1 steps, 59 spans, 21 GPU records to out/pp2.moescope"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("rank 1 (stage 1, tp 0, dp 0): 31 spans, 11 kernels"), std::string::npos) << r.out;
  EXPECT_EQ(outputs(), 1u);

  const Result stats = run("stats out/pp2.moescope --json");
  ASSERT_EQ(stats.code, 0) << stats.err;
  const auto j = nlohmann::json::parse(stats.out);
  EXPECT_EQ(j["run"]["pp"], 2);
  EXPECT_EQ(j["run"]["microbatches"], 2);
  ASSERT_EQ(j["stages"].size(), 2u);
  EXPECT_EQ(j["stages"][1]["stage"], 1);
  const Result exported = run("export out/pp2.moescope --format chrome -o out/pp2.json");
  EXPECT_EQ(exported.code, 0) << exported.err;
  EXPECT_NE(read(dir_ / "out/pp2.json").find("\"cat\":\"user\""), std::string::npos);
}

TEST_F(CliImport, OddEventsAreNotedOnStderr) {
  const Result r = run("import " + kData + "unknown-categories.json -o out/odd.moescope");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(
      r.err.find("moescope-cli import: " + kData +
                 "unknown-categories.json: 2 events of unknown categories (my_framework_op, another_unknown) "
                 "kept as user\n"),
      std::string::npos)
      << r.err;
  const Result named = run("import " + kData + "rank3-no-distributed-info.json -o out/r3.moescope");
  ASSERT_EQ(named.code, 0) << named.err;
  EXPECT_NE(named.err.find("rank 3 from the file name"), std::string::npos) << named.err;
  EXPECT_NE(named.out.find("rank 3 (stage 0, tp 0, dp 3)"), std::string::npos) << named.out;
  const Result given = run("import " + kData + "rank3-no-distributed-info.json -o out/r1.moescope --rank 1");
  ASSERT_EQ(given.code, 0) << given.err;
  EXPECT_NE(given.out.find("rank 1 (stage 0, tp 0, dp 1)"), std::string::npos) << given.out;
}

TEST_F(CliImport, BadInputIsOneLineExitTwoAndNothingWritten) {
  std::ofstream(dir_ / "bad-rules.toml") << "[[rule]]\nmatch = 'x'\ncategory = \"compute.magic\"\n";
  const std::string pp2 = kData + "pp2-rank0.json " + kData + "pp2-rank1.json";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"import " + kData + "not-json.json -o out/x.moescope",
       "not-json.json: not JSON (byte 0: unexpected character 'T')"},
      {"import " + kData + "not-kineto.json -o out/x.moescope",
       "not-kineto.json: not a PyTorch profiler (Kineto) trace"},
      {"import " + kData + "array-form.json -o out/x.moescope",
       "array-form.json: not a PyTorch profiler (Kineto) trace"},
      {"import " + kData + "pp2-rank0-truncated.json.gz -o out/x.moescope", "truncated gzip data"},
      {"import " + kData + "pp2-rank0.json " + kData + "other-run-rank1.json -o out/x.moescope",
       "traces of different runs"},
      {"import " + pp2 + " -o out/x.moescope --rules bad-rules.toml",
       "bad-rules.toml:3: unknown category 'compute.magic'"},
      {"import " + pp2 + " -o out/x.moescope --pp 3",
       "pp 3 x tp 1 does not divide the world size 2 of the traces"},
      {"import " + pp2 + " -o out/x.moescope --order tp-dp-xp",
       "unknown part 'xp' in the rank order 'tp-dp-xp'"},
      {"import " + pp2 + " -o out/x.moescope --schedule zigzag", "--schedule"},
      {"import " + kData + "missing.json -o out/x.moescope", "missing.json: cannot open"},
      {"import " + pp2, "--output is required"},
  };
  for (const auto& [args, problem] : cases) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(problem), std::string::npos) << args << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << args << "\n" << r.out;
    EXPECT_EQ(outputs(), 0u) << args;
  }
}

TEST_F(CliImport, HelpNamesEveryOption) {
  const Result r = run("import --help");
  ASSERT_EQ(r.code, 0);
  for (const char* option :
       {"--output", "--pp", "--tp", "--dp", "--order", "--schedule", "--rules", "--rank"})
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
}

}  // namespace
