// moescope-cli record as a user runs it, on a program that calls NVTX and no CUDA (nvtx_probe): the
// injection library's host path end to end, no GPU needed. Bad input: a command not found (exit 127,
// no run file), a bad rules file or step range (exit 2 before the command starts), a command that
// fails (its exit code, the run kept and marked failed); an existing run replaced only with --force; no
// GPU said once; two processes, one run.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "storage/run_reader.h"
#include "tests/common/binary_path.h"
#include "tests/common/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using namespace moescope;

const std::string kCli = moescope::testing::binaryPath("moescope-cli").string();
const std::string kProbe = moescope::testing::binaryPath("nvtx_probe").string();

struct Result {
  int code = -1;
  std::string out, err;
};

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class CliRecord : public ::testing::Test {
 protected:
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
  storage::Trace load(const std::string& name) const { return storage::RunReader::open(dir_ / name)->load(); }
  bool exists(const std::string& name) const { return fs::exists(dir_ / name); }

  moescope::testing::TempDir temp_{"cli-record"};
  fs::path dir_ = temp_.path();
};

TEST_F(CliRecord, HostOnlyNvtxRangesIntoARun) {
  const Result r = run("record --pp 2 -o run.moescope -- '" + kProbe + "' 0 2 4 2 0");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(r.err, "host NVTX ranges only"), 1u) << r.err;
  EXPECT_FALSE(exists("run.moescope.shards"));
  const storage::Trace t = load("run.moescope");
  EXPECT_EQ(t.run.status, storage::RunStatus::Complete);
  EXPECT_EQ(t.run.backend, "recorded");
  EXPECT_EQ(t.steps.size(), 2u);
  EXPECT_EQ(t.run.microbatches, 4);
  EXPECT_TRUE(t.gpu.empty());
  // Stage 0 of 2, 4 micro-batches: 8 passes a step, each with a nested layer range, a step marker and
  // a domain's range per step, and the range another thread ended.
  EXPECT_EQ(t.spanCount(), 2u * (8 * 2 + 2) + 1);
}

TEST_F(CliRecord, TwoProcessesOneRunWithBothRanks) {
  const std::string p = "'" + kProbe + "'";
  const Result r = run("record --pp 2 -o two.moescope -- sh -c \"RANK=0 WORLD_SIZE=2 " + p +
                       " 0 2 3 1 0 & RANK=1 WORLD_SIZE=2 " + p + " 1 2 3 1 0; wait\"");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(r.err, "host NVTX ranges only"), 1u) << r.err;
  const storage::Trace t = load("two.moescope");
  ASSERT_EQ(t.ranks.size(), 2u);
  EXPECT_EQ(t.ranks[0].stage, 0);
  EXPECT_EQ(t.ranks[1].stage, 1);
  EXPECT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.run.name, "two");
}

// Without a launcher's rank variables each process takes the next free shard index as its rank and
// does not know how many there are (shard.count 0): the merge counts the shards.
TEST_F(CliRecord, TwoProcessesWithoutRankVariablesOneRun) {
  const std::string p = "'" + kProbe + "'";
  const Result r =
      run("record --pp 2 -o plain.moescope -- sh -c \"" + p + " 0 2 3 1 0 & " + p + " 0 2 3 1 0; wait\"");
  ASSERT_EQ(r.code, 0) << r.err;
  const storage::Trace t = load("plain.moescope");
  EXPECT_EQ(t.run.status, storage::RunStatus::Complete) << t.run.error;
  ASSERT_EQ(t.ranks.size(), 2u);
  EXPECT_EQ(t.ranks[0].rank, 0);
  EXPECT_EQ(t.ranks[1].rank, 1);
  bool counted = false;
  for (const auto& [key, value] : t.meta) counted = counted || (key == "run.processes" && value == "2");
  EXPECT_TRUE(counted);
}

// An existing file is replaced only with --force: without it the command does not start and the file
// is as it was; a folder is refused the same way.
TEST_F(CliRecord, AnExistingRunIsReplacedOnlyWithForce) {
  std::ofstream(dir_ / "kept.moescope") << "mine";
  const std::string command = " -- '" + kProbe + "' 0 1 2 1 0";
  Result r = run("record -o kept.moescope -- touch started");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(count(r.err, "\n"), 1u) << r.err;
  EXPECT_FALSE(exists("started"));
  EXPECT_EQ(read(dir_ / "kept.moescope"), "mine");
  fs::create_directories(dir_ / "folder.moescope");
  r = run("record -o folder.moescope" + command);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(fs::is_directory(dir_ / "folder.moescope"));
  r = run("record --force -o kept.moescope" + command);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(load("kept.moescope").run.status, storage::RunStatus::Complete);
}

TEST_F(CliRecord, CommandNotFound) {
  const Result r = run("record -o run.moescope -- no-such-command-here --flag");
  EXPECT_EQ(r.code, 127);
  EXPECT_EQ(r.err, "moescope: no-such-command-here: command not found\n");
  EXPECT_FALSE(exists("run.moescope"));
  EXPECT_FALSE(exists("run.moescope.shards"));
}

TEST_F(CliRecord, CommandFailsItsCodeReturnedRunKeptAndFailed) {
  const Result r = run("record -o failed.moescope -- '" + kProbe + "' 0 1 2 1 3");
  EXPECT_EQ(r.code, 3) << r.err;
  const storage::Trace t = load("failed.moescope");
  EXPECT_EQ(t.run.status, storage::RunStatus::Failed);
  EXPECT_EQ(t.run.error, "the command exited with status 3");
  EXPECT_GT(t.spanCount(), 0u);
}

TEST_F(CliRecord, BadInputRefusedBeforeTheCommandStarts) {
  std::ofstream(dir_ / "bad-regex.toml") << "[[rule]]\nmatch = '(unclosed'\n";
  std::ofstream(dir_ / "bad-category.toml") << "[[rule]]\nmatch = 'x'\ncategory = \"compute.nothing\"\n";
  for (const std::string& options :
       {std::string("--rules bad-regex.toml"), std::string("--rules bad-category.toml"),
        std::string("--steps 5:2"), std::string("--order tp-pp"), std::string("--pp 0"),
        std::string("--launch-calls sometimes"), std::string("--rules missing.toml")}) {
    const Result r = run("record " + options + " -o run.moescope -- touch started");
    EXPECT_EQ(r.code, 2) << options << ": " << r.err;
    EXPECT_EQ(count(r.err, "\n"), 1u) << options << ": " << r.err;
    EXPECT_FALSE(exists("started")) << options;
    EXPECT_FALSE(exists("run.moescope")) << options;
    EXPECT_FALSE(exists("run.moescope.shards")) << options;
  }
}

TEST_F(CliRecord, NothingRecordedSaysSoAndPassesTheCodeThrough) {
  const Result r = run("record -o none.moescope -- sh -c 'echo out; exit 4'");
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_NE(r.err.find("nothing was recorded"), std::string::npos) << r.err;
  EXPECT_FALSE(exists("none.moescope"));
}

// The GPU acceptance (bench/record/run_h200_record.sh, parts 1 and 2): PyTorch's kernels all in the run,
// nesting, rows, torchrun on one GPU. Needs a GPU and PyTorch with CUDA. The overhead (part 3) is a
// benchmark, run by the script alone (docs/bench-record.md).
TEST_F(CliRecord, PyTorchOnTheGpu) {
  if (std::system("python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' "
                  "> /dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs a CUDA device and PyTorch with CUDA (python3 -c 'import torch')";
  const std::string script = std::string(MOESCOPE_SOURCE_DIR) + "/bench/record/run_h200_record.sh";
  // The build folder this test runs from (bin/ beside it: a build carried to the GPU server too).
  const std::string build =
      moescope::testing::binaryPath("moescope-cli").parent_path().parent_path().string();
  const std::string cmd = "MOESCOPE_RECORD_PARTS='1 2' MOESCOPE_BUILD='" + build + "' '" + script + "' '" +
                          (dir_ / "gpu").string() + "' > '" + (dir_ / "gpu.log").string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read(dir_ / "gpu.log");
}

TEST_F(CliRecord, Help) {
  const Result r = run("record --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--no-kernels"), std::string::npos);
  EXPECT_NE(r.out.find("--launch-calls"), std::string::npos);
}

// How launch calls are recorded reaches the recorded processes (the injection library reads it there):
// activity records unless told.
TEST_F(CliRecord, LaunchCallRecordingReachesTheCommand) {
  Result r = run("record -o none.moescope -- sh -c 'echo $MOESCOPE_RECORD_LAUNCHES'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "activity\n");
  r = run("record --launch-calls callbacks -o none.moescope -- sh -c 'echo $MOESCOPE_RECORD_LAUNCHES'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "callbacks\n");
}

}  // namespace
