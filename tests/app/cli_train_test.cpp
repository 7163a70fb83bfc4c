// moescope-cli train, run as a user runs it (the built binary): a good run writes its run file, metrics
// and checkpoint; every kind of bad input is exit 2 with a one-line message naming the problem and no
// file written; `moescope-cli stats` on a GPipe run reports the bubble share near the theory.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/cuda_kernel_options.h"
#include "storage/run_reader.h"
#include "tests/app/cli_test_util.h"
#include "tests/common/binary_path.h"
#include "tests/common/temp_dir.h"

namespace moescope::engine {
namespace {

// The lines of a metrics file, each a whole JSON object of the next step from 0; their number.
size_t metricsSteps(const std::string& jsonl) {
  std::istringstream lines(jsonl);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) EXPECT_EQ(nlohmann::json::parse(line)["step"], n++);
  return n;
}

// The run every train test starts from: PPMoE on pp 2 x tp 2, a few milliseconds a step.
constexpr const char* kTiny = R"([model]
vocab_size = 256
seq_len = 8
d_model = 16
n_heads = 4
n_layers = 2
d_ff = 32
n_experts = 4
top_k = 2
moe_every = 2
[parallel]
pp = 2
tp = 2
microbatches = 2
[train]
global_batch = 4
steps = 3
lr = 1e-2
)";

namespace fs = std::filesystem;

const std::string kCli = moescope::testing::binaryPath("moescope-cli").string();

struct Result {
  int code = -1;
  std::string out, err;
};

class CliTrain : public ::testing::Test {
 protected:
  void SetUp() override { writeFile("tiny.toml", kTiny); }

  void writeFile(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs moescope-cli in the test's folder.
  Result run(const std::string& args) {
    const std::string cmd = "cd '" + dir_.string() + "' && '" + kCli + "' " + args + " > '" +
                            path("stdout.log") + "' 2> '" + path("stderr.log") + "'";
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read("stdout.log");
    r.err = read("stderr.log");
    fs::remove(path("stdout.log"));
    fs::remove(path("stderr.log"));
    return r;
  }
  std::string read(const std::string& name) const {
    std::ifstream in(dir_ / name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Starts moescope-cli in the test's folder with stderr to err.log; returns its process id.
  pid_t spawn(const std::string& args) {
    const std::string cmd = "cd '" + dir_.string() + "' && exec '" + kCli + "' " + args + " 2> err.log";
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }
  // Waits until err.log holds `text` (at most timeout_ms).
  void waitForOutput(const std::string& text, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms && read("err.log").find(text) == std::string::npos;
         waited += 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::set<std::string> files() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
    return names;
  }

  // Bad input: exit 2, one line on stderr containing `words`, nothing new in the folder.
  void expectBadInput(const std::string& args, const std::string& words) {
    const auto before = files();
    const Result r = run(args + " --out out.moescope --metrics m.jsonl --save ck.safetensors");
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(words), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(files(), before) << args;
  }

  const moescope::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

TEST_F(CliTrain, GoodRunWritesRunFileMetricsAndCheckpoint) {
  const Result r =
      run("train --config tiny.toml --set train.steps=2 --out run.moescope --metrics m.jsonl --save "
          "ck.safetensors");
  ASSERT_EQ(r.code, 0) << r.err;
  // One progress line per step: step, loss, tokens/s, ETA.
  EXPECT_NE(r.err.find("step 1/2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step 2/2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
  EXPECT_NE(r.err.find("ETA"), std::string::npos);
  // The run's summary last: its steps and tokens/s, without a device memory peak (the CPU counts none).
  EXPECT_NE(r.err.find("done: 2 steps, "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("peak"), std::string::npos) << r.err;
  EXPECT_EQ(files(), (std::set<std::string>{"tiny.toml", "run.moescope", "m.jsonl", "ck.safetensors"}));

  std::istringstream lines(read("m.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["step"], n);
    for (const char* key : {"loss", "ce_loss", "aux_loss", "tokens", "step_ms", "tokens_per_s"})
      EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["tokens"], 32);
    EXPECT_FALSE(j.contains("peak_memory_bytes")) << "the CPU backend counts no device memory: " << line;
    EXPECT_NEAR(j["loss"].get<double>(), j["ce_loss"].get<double>() + 0.01 * j["aux_loss"].get<double>(),
                1e-6);
    ++n;
  }
  EXPECT_EQ(n, 2);

  const auto trace = storage::RunReader::open(path("run.moescope"))->load();
  EXPECT_EQ(trace.run.status, storage::RunStatus::Complete);
  EXPECT_EQ(trace.ranks.size(), 4u);
  EXPECT_GT(trace.spanCount(), 0u);
  EXPECT_EQ(trace.steps.size(), 2u);
  for (const storage::StepMetric& m : trace.steps) EXPECT_EQ(m.peak_memory_bytes, 0);

  Config c = loadConfigFile(path("tiny.toml"));
  // wte, wpe; a dense layer (8 + 4); a MoE layer (8 + router + 4 experts x 4); ln_f, lm_head.
  EXPECT_EQ(loadCheckpoint(path("ck.safetensors"), c.model).size(), 2u + 12u + 25u + 3u);
}

TEST_F(CliTrain, InitLoadsTheWeightsASavedRunStartedFrom) {
  ASSERT_EQ(run("train --config tiny.toml --steps 0 --save init.safetensors").code, 0);
  ASSERT_EQ(run("train --config tiny.toml --steps 1 --metrics a.jsonl").code, 0);
  // Another seed, but the checkpoint's weights: the same step-0 loss as the first run.
  ASSERT_EQ(
      run("train --config tiny.toml --steps 1 --set train.seed=99 --init init.safetensors --metrics b.jsonl")
          .code,
      0);
  ASSERT_EQ(run("train --config tiny.toml --steps 1 --set train.seed=99 --metrics c.jsonl").code, 0);
  const double a = nlohmann::json::parse(read("a.jsonl"))["loss"];
  const double b = nlohmann::json::parse(read("b.jsonl"))["loss"];
  const double c = nlohmann::json::parse(read("c.jsonl"))["loss"];
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_F(CliTrain, UnknownConfigKey) {
  writeFile("bad.toml", "[model]\nd_modle = 16\n");
  expectBadInput("train --config bad.toml", "model.d_modle");
  expectBadInput("train --config tiny.toml --set model.widht=3", "model.widht");
}

TEST_F(CliTrain, ImpossibleLayouts) {
  expectBadInput("train --config tiny.toml --set model.n_experts=3", "n_experts");  // E % tp != 0
  expectBadInput("train --config tiny.toml --set parallel.layout=dpmoe", "dpmoe needs tp = 1");  // tp = 2
  expectBadInput("train --config tiny.toml --set train.global_batch=3", "global_batch");
  expectBadInput("train --config tiny.toml --set parallel.pp=3", "n_layers");
}

// The schedule rules of MODEL.md (tiny.toml: 2 layers, pp 2, 2 micro-batches).
TEST_F(CliTrain, ImpossibleSchedules) {
  expectBadInput("train --config tiny.toml --set parallel.virtual_stages=2",
                 "needs schedule \"interleaved\"");
  expectBadInput(
      "train --config tiny.toml --set parallel.schedule=interleaved --set parallel.virtual_stages=2",
      "model.n_layers (2) is not divisible into pp x virtual_stages (2 x 2) chunks");
  expectBadInput("train --config tiny.toml --set parallel.schedule=interleaved --set parallel.microbatches=1",
                 "parallel.microbatches (1) is not a multiple of pp (2)");
  expectBadInput("train --config tiny.toml --set parallel.schedule=zigzag", "parallel.schedule");
}

TEST_F(CliTrain, MissingFiles) {
  expectBadInput("train --config tiny.toml --data nowhere.npy", "nowhere.npy");
  expectBadInput("train --config missing.toml", "missing.toml");
  expectBadInput("train --config tiny.toml --init nowhere.safetensors", "nowhere.safetensors");
}

TEST_F(CliTrain, CheckpointWithWrongNameOrShape) {
  ASSERT_EQ(run("train --config tiny.toml --steps 0 --save good.safetensors").code, 0);
  // A wider FFN: every c_fc has the wrong shape; the message names the first.
  ASSERT_EQ(run("train --config tiny.toml --steps 0 --set model.d_ff=64 --save wide.safetensors").code, 0);
  expectBadInput("train --config tiny.toml --init wide.safetensors", "h.0.mlp.c_fc.weight");
  // A renamed tensor (same length, so only the name differs).
  std::string bytes = read("good.safetensors");
  const auto at = bytes.find("\"ln_f.weight\"");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 13, "\"ln_F.weight\"");
  std::ofstream(path("renamed.safetensors"), std::ios::binary) << bytes;
  expectBadInput("train --config tiny.toml --init renamed.safetensors", "ln_f.weight");
}

TEST_F(CliTrain, OtherBadArguments) {
  expectBadInput("train --config tiny.toml --backend cuda", "--backend cuda:");  // not built, or too few GPUs
  expectBadInput("train --config tiny.toml --backend tpu", "--backend");
  expectBadInput("train --config tiny.toml --steps -1", "steps");
  const Result r = run("train --config tiny.toml --out nowhere/run.moescope");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("nowhere"), std::string::npos);
}

// The GPU tracer's switches (tracer/gpu_trace_options.h) are read once, before any file is made, in
// every build and for every backend: a value a switch does not take is bad input, named in one line;
// the values it takes pass.
TEST_F(CliTrain, BadGpuTracerSwitches) {
  for (const char* name :
       {"MOESCOPE_GPU_FLUSH", "MOESCOPE_GPU_CORRELATION", "MOESCOPE_GPU_TRACE", "MOESCOPE_GPU_NVTX"}) {
    ASSERT_EQ(setenv(name, "sometimes", 1), 0);
    expectBadInput("train --config tiny.toml", name);
    unsetenv(name);
  }
  for (const char* value : {"full", "drain", "worker"}) {
    ASSERT_EQ(setenv("MOESCOPE_GPU_FLUSH", value, 1), 0);
    const Result r = run("train --config tiny.toml --dry-run");
    EXPECT_EQ(r.code, 0) << value << ": " << r.err;
  }
  unsetenv("MOESCOPE_GPU_FLUSH");
}

// The CUDA backend's fused-path switches (engine/cuda_kernel_options.h) likewise: every variable refuses
// a value it does not take, in every build and for every backend; the values it takes pass, and --help
// lists them.
TEST_F(CliTrain, BadCudaKernelSwitches) {
  for (const auto& variable : engine::cudaKernelVariables()) {
    const std::string name(variable.name);
    ASSERT_EQ(setenv(name.c_str(), "sometimes", 1), 0);
    expectBadInput("train --config tiny.toml", name);
    for (const auto& v : variable.values) {
      ASSERT_EQ(setenv(name.c_str(), std::string(v.value).c_str(), 1), 0);
      const Result r = run("train --config tiny.toml --dry-run");
      EXPECT_EQ(r.code, 0) << name << "=" << v.value << ": " << r.err;
    }
    unsetenv(name.c_str());
  }
  const Result help = run("train --help");
  EXPECT_NE(help.out.find("MOESCOPE_CUDA_ATTENTION=cudnn"), std::string::npos) << help.out;
}

// --dry-run checks everything a run checks and writes nothing: "ok" and exit 0 for a good config, the
// run's own one-line message and exit 2 for a bad one (what the GUI's run dialog shows before launch).
TEST_F(CliTrain, DryRunChecksAndWritesNothing) {
  const auto before = files();
  const Result good =
      run("train --config tiny.toml --dry-run --out out.moescope --metrics m.jsonl --save ck.safetensors");
  EXPECT_EQ(good.code, 0) << good.err;
  EXPECT_NE(good.out.find("ok"), std::string::npos) << good.out;
  EXPECT_EQ(files(), before);
  // The plan: the schedule and each stage's passes (tiny.toml: pp 2, 2 micro-batches, 1F1B).
  EXPECT_NE(good.out.find("schedule 1f1b: pp 2, 2 micro-batches, 1 virtual stages; theoretical bubble 33.3%\n"
                          "stage 0: F0 F1 B0 B1\n"
                          "stage 1: F0 B0 F1 B1\n"),
            std::string::npos)
      << good.out;
  const Result zb = run("train --config tiny.toml --dry-run --set parallel.schedule=zb-h1");
  EXPECT_EQ(zb.code, 0) << zb.err;
  EXPECT_NE(zb.out.find("stage 0: F0 F1 B0 W0 B1 W1\nstage 1: F0 B0 F1 B1 W0 W1\n"), std::string::npos)
      << zb.out;
  const Result interleaved = run(
      "train --config tiny.toml --dry-run --set model.n_layers=4 --set parallel.schedule=interleaved --set "
      "parallel.virtual_stages=2");
  EXPECT_EQ(interleaved.code, 0) << interleaved.err;
  EXPECT_NE(interleaved.out.find("stage 0: F0.0 F1.0 F0.1 F1.1 B0.1 B1.1 B0.0 B1.0\n"), std::string::npos)
      << interleaved.out;
  expectBadInput("train --config tiny.toml --dry-run --set model.n_experts=3", "n_experts");
  expectBadInput("train --config tiny.toml --dry-run --data nowhere.npy", "nowhere.npy");
}

// DESIGN.md's bubble: `moescope-cli stats` on a GPipe run with p = 4, m = 8 reports a share within 0.1 of
// (p - 1) / (m + p - 1) = 3/11.
TEST_F(CliTrain, StatsOnGpipeRunReportsBubbleShareNearTheory) {
  writeFile("gpipe.toml", R"([model]
vocab_size = 256
seq_len = 32
d_model = 128
n_heads = 4
n_layers = 8
d_ff = 512
n_experts = 0
[parallel]
pp = 4
microbatches = 8
schedule = "gpipe"
[train]
global_batch = 32
steps = 3
)");
  ASSERT_EQ(run("train --config gpipe.toml --out gpipe.moescope").code, 0);
  const Result r = run("stats gpipe.moescope --json");
  if (r.code != 0 && r.err.find("not built yet") != std::string::npos)
    GTEST_SKIP() << "moescope-cli stats is not built yet";
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["stages"].size(), 4u);
  double share = 0;
  for (const auto& stage : j["stages"]) {
    EXPECT_NEAR(stage["bubble"]["theoretical_share"].get<double>(), 3.0 / 11.0, 1e-9);
    share += stage["bubble"]["share"].get<double>();
  }
  share /= 4;
  std::printf("moescope-cli stats: bubble share %.3f, theory %.3f\n", share, 3.0 / 11.0);
  EXPECT_NEAR(share, 3.0 / 11.0, 0.1);
}

// The MoE routing of a run: `stats --json` reports it per layer, `export --format moe-load` writes a
// line per step, micro-batch, layer and expert, `compare` lines up the imbalance; a dense run has none
// to export (exit 2, one line, no file).
TEST_F(CliTrain, StatsExportAndCompareTheMoeRouting) {
  ASSERT_EQ(run("train --config tiny.toml --set model.capacity_factor=0.5 --out moe.moescope").code, 0);
  ASSERT_EQ(run("train --config tiny.toml --set model.n_experts=0 --out dense.moescope").code, 0);
  const Result stats = run("stats moe.moescope --json");
  ASSERT_EQ(stats.code, 0) << stats.err;
  const auto j = nlohmann::json::parse(stats.out);
  ASSERT_TRUE(j.contains("moe"));
  ASSERT_EQ(j["moe"]["layers"].size(), 1u);  // layer 1
  EXPECT_EQ(j["moe"]["layers"][0]["layer"], 1);
  EXPECT_GT(j["moe"]["dropped_share"].get<double>(), 0);
  EXPECT_GE(j["moe"]["imbalance"].get<double>(), 1.0);
  EXPECT_FALSE(nlohmann::json::parse(run("stats dense.moescope --json").out).contains("moe"));
  const Result exported = run("export moe.moescope --format moe-load -o load.csv");
  ASSERT_EQ(exported.code, 0) << exported.err;
  const std::string csv = read("load.csv");
  // 3 steps x 2 micro-batches x 1 layer x 4 experts, and the header.
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 24);
  const Result dense = run("export dense.moescope --format moe-load -o dense.csv");
  EXPECT_EQ(dense.code, 2);
  EXPECT_NE(dense.err.find("no MoE routing"), std::string::npos) << dense.err;
  EXPECT_EQ(std::count(dense.err.begin(), dense.err.end(), '\n'), 1) << dense.err;
  EXPECT_FALSE(fs::exists(dir_ / "dense.csv"));
  const Result compared = run("compare moe.moescope dense.moescope");
  ASSERT_EQ(compared.code, 0) << compared.err;
  EXPECT_NE(compared.out.find("MoE imbalance (max/mean)"), std::string::npos) << compared.out;
  EXPECT_NE(compared.out.find("layer 1 imbalance"), std::string::npos) << compared.out;
}

}  // namespace
}  // namespace moescope::engine

namespace moescope::engine {
namespace {

// Ctrl-C: the run stops between micro-batches, its run file marked cancelled; the metrics of the
// completed steps are kept (every line a whole step), no checkpoint and no temporary file is left.
TEST_F(CliTrain, InterruptCancelsTheRun) {
  const pid_t pid = spawn(
      "train --config tiny.toml --steps 1000000 --data random --out run.moescope "
      "--metrics m.jsonl --save ck.safetensors");
  ASSERT_GE(pid, 0);
  waitForOutput("step 3/", 10000);  // a few steps, then interrupt
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130) << read("err.log");
  const auto trace = storage::RunReader::open(path("run.moescope"))->load();
  EXPECT_EQ(trace.run.status, storage::RunStatus::Cancelled);
  EXPECT_GE(trace.steps.size(), 3u);
  EXPECT_EQ(metricsSteps(read("m.jsonl")), trace.steps.size());
  EXPECT_FALSE(fs::exists(dir_ / "ck.safetensors"));
  EXPECT_EQ(files(), (std::set<std::string>{"tiny.toml", "err.log", "run.moescope", "m.jsonl"}));
}

// A failure during the run (here: the checkpoint's folder disappears before the save) is exit 1, with
// the run file marked failed and the error kept in it.
TEST_F(CliTrain, FailureDuringTheRunMarksTheRunFileFailed) {
  fs::create_directories(dir_ / "sub");
  const pid_t pid = spawn(
      "train --config tiny.toml --steps 400 --data random --out run.moescope --save sub/ck.safetensors");
  ASSERT_GE(pid, 0);
  waitForOutput("step 2/", 4000);
  fs::remove_all(dir_ / "sub");
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  const std::string err = read("err.log");
  if (err.find("step 400/400") == std::string::npos) GTEST_SKIP() << "the run ended early: " << err;
  EXPECT_EQ(WEXITSTATUS(status), 1) << err;
  EXPECT_NE(err.find("sub/ck.safetensors"), std::string::npos) << err;
  const auto trace = storage::RunReader::open(path("run.moescope"))->load();
  EXPECT_EQ(trace.run.status, storage::RunStatus::Failed);
  EXPECT_NE(trace.run.error.find("checkpoint"), std::string::npos) << trace.run.error;
  EXPECT_EQ(trace.steps.size(), 400u);
}

}  // namespace
}  // namespace moescope::engine

// Issue 12's classes, each as a user meets it: exit code, one line, and no file changed or lost.
namespace moescope::engine {
namespace {

using testing::CliFolder;
using testing::CliResult;
using testing::expectRefused;

// Lines of stderr that are not progress lines: the command's own messages.
size_t messageLines(const std::string& err) {
  std::istringstream in(err);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) n += line.rfind("step ", 0) == 0 ? 0 : 1;
  return n;
}

// 2. An output is never an input nor another output; an existing run is replaced only with --force.
TEST(CliTrainOutputs, OutputsNeverOverwriteInputsOrEachOther) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  f.write("tokens.bin", std::string(4096, 'a'));
  ASSERT_EQ(f.run("train --config tiny.toml --steps 0 --save init.safetensors").code, 0);
  expectRefused(f, "train --config tiny.toml --out tiny.toml", "is one of the inputs");
  expectRefused(f, "train --config tiny.toml --data tokens.bin --metrics tokens.bin", "is one of the inputs");
  expectRefused(f, "train --config tiny.toml --init init.safetensors --save ./init.safetensors",
                "is one of the inputs");
  expectRefused(f, "train --config tiny.toml --force --out tiny.toml", "is one of the inputs");
  expectRefused(f, "train --config tiny.toml --save x --out x", "is also the output of --out");
  expectRefused(f, "train --config tiny.toml --metrics x --out x", "is also the output of --out");
  ::symlink("tiny.toml", f.path("link.toml").c_str());
  expectRefused(f, "train --config link.toml --force --save tiny.toml", "is one of the inputs");
}

TEST(CliTrainOutputs, DevicesFifosLinksAndEmptyNamesAreRefused) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  ASSERT_EQ(::mkfifo(f.path("fifo").c_str(), 0600), 0);
  f.write("target.jsonl", "kept");
  ::symlink("target.jsonl", f.path("link.jsonl").c_str());
  expectRefused(f, "train --config tiny.toml --force --out /dev/full", "not a regular file");
  expectRefused(f, "train --config tiny.toml --force --metrics /dev/null", "not a regular file");
  expectRefused(f, "train --config tiny.toml --force --out fifo", "not a regular file");
  expectRefused(f, "train --config tiny.toml --force --metrics link.jsonl", "symbolic link");
  expectRefused(f, "train --config tiny.toml --out ''", "--out: the path is empty");
  expectRefused(f, "train --config tiny.toml --save /proc/ck.safetensors", "no new file can be made");
}

// An existing run is kept: refused without --force; with --force it stays whole while its successor
// runs, and a successor that does not complete leaves it as it was.
TEST(CliTrainOutputs, AnExistingRunIsReplacedOnlyByACompletedOne) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  ASSERT_EQ(f.run("train --config tiny.toml --out run.moescope").code, 0);
  const std::string old = f.read("run.moescope");
  expectRefused(f, "train --config tiny.toml --out run.moescope", "exists; give --force");

  const pid_t pid =
      f.spawn("train --config tiny.toml --force --steps 1000000 --data random --out run.moescope");
  ASSERT_TRUE(f.waitForErr("step 3/", 20000)) << f.spawnedErr();
  EXPECT_EQ(f.read("run.moescope"), old);  // not removed, not touched while the new run goes on
  kill(pid, SIGINT);
  EXPECT_EQ(CliFolder::wait(pid), 130);
  EXPECT_NE(f.spawnedErr().find("'run.moescope' is kept as it was"), std::string::npos) << f.spawnedErr();
  EXPECT_EQ(f.read("run.moescope"), old);
  EXPECT_EQ(f.names(), (std::set<std::string>{"tiny.toml", "run.moescope"}));

  const CliResult replaced = f.run("train --config tiny.toml --force --steps 2 --out run.moescope");
  ASSERT_EQ(replaced.code, 0) << replaced.err;
  const auto trace = storage::RunReader::open(f.path("run.moescope"))->load();
  EXPECT_EQ(trace.steps.size(), 2u);
  EXPECT_EQ(f.names(), (std::set<std::string>{"tiny.toml", "run.moescope"}));
}

// A second writer of a run is refused while the first writes it; the first goes on untouched.
TEST(CliTrainOutputs, ASecondWriterOfARunIsRefused) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  const pid_t first = f.spawn("train --config tiny.toml --steps 1000000 --data random --out run.moescope");
  ASSERT_TRUE(f.waitForErr("step 2/", 20000)) << f.spawnedErr();
  const CliResult second = f.run("train --config tiny.toml --force --out run.moescope");
  EXPECT_EQ(second.code, 2) << second.err;
  EXPECT_NE(second.err.find("being written by another process"), std::string::npos) << second.err;
  EXPECT_EQ(second.errLines(), 1u);
  const CliResult third = f.run("train --config tiny.toml --out run.moescope");
  EXPECT_EQ(third.code, 2) << third.err;
  EXPECT_NE(third.err.find("exists"), std::string::npos) << third.err;
  kill(first, SIGINT);
  EXPECT_EQ(CliFolder::wait(first), 130) << f.spawnedErr();
  const auto trace = storage::RunReader::open(f.path("run.moescope"))->load();
  EXPECT_EQ(trace.run.status, storage::RunStatus::Cancelled);
  EXPECT_GE(trace.steps.size(), 2u);
}

// 9. SIGTERM is a cancel, as Ctrl-C: exit 143, the run marked cancelled with its completed steps'
// metrics, nothing else left (no temporary file, no -wal or -shm: a finished run is one file).
TEST(CliTrainSignals, SigtermCancelsAndCleansUp) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  const pid_t pid = f.spawn(
      "train --config tiny.toml --steps 1000000 --data random --out run.moescope --metrics m.jsonl "
      "--save ck.safetensors");
  ASSERT_TRUE(f.waitForErr("step 3/", 20000)) << f.spawnedErr();
  kill(pid, SIGTERM);
  EXPECT_EQ(CliFolder::wait(pid), 143);
  EXPECT_EQ(messageLines(f.spawnedErr()), 1u) << f.spawnedErr();
  EXPECT_NE(f.spawnedErr().find("cancelled (SIGTERM)"), std::string::npos);
  EXPECT_EQ(f.names(), (std::set<std::string>{"tiny.toml", "run.moescope", "m.jsonl"}));
  const auto trace = storage::RunReader::open(f.path("run.moescope"))->load();
  EXPECT_EQ(trace.run.status, storage::RunStatus::Cancelled);
  EXPECT_GE(trace.steps.size(), 3u);
  EXPECT_EQ(metricsSteps(f.read("m.jsonl")), trace.steps.size());
}

// A second signal ends the process at once: killed by the signal, temporary files removed; the run file
// keeps what was committed and reads as a run that did not finish.
TEST(CliTrainSignals, ASecondSignalEndsAtOnceAndLeavesNoTemporaryFile) {
  CliFolder f;
  f.write("big.toml", kTiny);
  // Slow micro-batches (the cancel waits for the one under way), so the second signal arrives while the
  // first is still being honoured.
  const pid_t pid = f.spawn(
      "train --config big.toml --set model.d_model=512 --set model.d_ff=2048 --set model.seq_len=256 "
      "--set train.global_batch=16 --steps 1000000 --data random --out run.moescope --metrics m.jsonl "
      "--save ck.safetensors");
  // Once the run is under way (its run file written to), within the first step.
  for (int i = 0; i < 6000; ++i) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(f.path("run.moescope"), ec);
    if (!ec && size > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(pid, SIGINT);
  // Apart, or the kernel merges the two into one pending signal; well within a micro-batch (~100 ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "ended with status " << status;
  for (const std::string& name : f.names())
    EXPECT_TRUE(name == "big.toml" || name.rfind("run.moescope", 0) == 0 || name == "m.jsonl") << name;
  EXPECT_NO_THROW(storage::RunReader::open(f.path("run.moescope"))->load());
}

// 3. A full disk (RLIMIT_FSIZE, which works anywhere without privileges: writes beyond the limit fail
// with EFBIG once SIGXFSZ is ignored): the run stops at the first step after the failed write, one
// line, exit 1; the run file keeps what was written, readable, marked failed; nothing temporary stays.
// The limit (8 MiB: sh counts 512-byte blocks) holds several of the tracer's commits: the tiny model
// runs a step in about a millisecond, so one 100 ms flush can commit over 1 MiB, and a limit below the
// first commit leaves a file with no step in it (what was written is then nothing).
TEST(CliTrainDiskFull, AFileSizeLimitStopsTheRunEarly) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  const CliResult r = f.run("train --config tiny.toml --steps 100000 --data random --out run.moescope",
                            "trap '' XFSZ; ulimit -f 16384;");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(messageLines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("run.moescope"), std::string::npos) << r.err;
  const auto trace = storage::RunReader::open(f.path("run.moescope"))->load();
  EXPECT_EQ(trace.run.status, storage::RunStatus::Failed);
  EXPECT_GT(trace.steps.size(), 0u);
  EXPECT_LT(trace.steps.size(), 100000u);
  for (const std::string& name : f.names())
    EXPECT_TRUE(name == "tiny.toml" || name.rfind("run.moescope", 0) == 0) << name;
}

// A cut metrics file is never published: metrics that could not be written end the run, and the
// partial file goes with the temporary name it was written under.
TEST(CliTrainDiskFull, ACutMetricsFileIsNotPublished) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  const CliResult r = f.run("train --config tiny.toml --steps 100000 --data random --metrics m.jsonl",
                            "trap '' XFSZ; ulimit -f 16;");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(messageLines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("--metrics 'm.jsonl'"), std::string::npos) << r.err;
  EXPECT_EQ(f.names(), (std::set<std::string>{"tiny.toml"}));
}

// The same on a real full file system: an 8 MiB tmpfs (several commits, as above) (mounting needs root and
// CAP_SYS_ADMIN: skipped with the reason where the test cannot mount). SQLite reports the full disk; the
// space the writer held back lets it still mark the run failed.
TEST(CliTrainDiskFull, AFullFileSystemStopsTheRunAndMarksItFailed) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  const std::string mnt = f.path("small");
  std::filesystem::create_directory(mnt);
  if (std::system(("mount -t tmpfs -o size=8m tmpfs '" + mnt + "' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP()
        << "cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the RLIMIT_FSIZE tests cover it";
  struct Unmount {
    std::string at;
    ~Unmount() { std::system(("umount '" + at + "'").c_str()); }
  } unmount{mnt};
  const CliResult r = f.run(
      "train --config tiny.toml --steps 100000 --data random --out small/run.moescope --metrics "
      "small/m.jsonl "
      "--save small/ck.safetensors");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(messageLines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("full"), std::string::npos) << r.err;
  const auto trace = storage::RunReader::open(mnt + "/run.moescope")->load();
  EXPECT_EQ(trace.run.status, storage::RunStatus::Failed);
  EXPECT_NE(trace.run.error.find("full"), std::string::npos) << trace.run.error;
  EXPECT_GT(trace.steps.size(), 0u);
  const CliResult stats = f.run("stats small/run.moescope");
  EXPECT_EQ(stats.code, 0) << stats.err;
  std::set<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(mnt)) left.insert(e.path().filename().string());
  for (const std::string& name : left)
    EXPECT_TRUE(name.rfind("run.moescope", 0) == 0 || name == "m.jsonl") << name;  // no .partial, no reserve
}

// 4. Arithmetic: sizes whose products overflow are refused with their limit named, before any work.
TEST(CliTrainLimits, HugeSizesAreRefusedWithTheirLimit) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  expectRefused(
      f,
      "train --config tiny.toml --dry-run --set parallel.pp=4294967296 --set parallel.dp=4294967296 "
      "--set parallel.microbatches=4294967296",
      "parallel.pp = 4294967296 is above its limit 1024");
  expectRefused(f, "train --config tiny.toml --dry-run --set model.n_layers=100000000", "above its limit");
  expectRefused(f, "train --config tiny.toml --dry-run --set model.n_experts=4294967296", "above its limit");
}

// 5. Resources before work: a model that cannot fit is refused by --dry-run and by train, with what it
// needs and what there is, before any file is made.
TEST(CliTrainLimits, AModelTooLargeForTheMachineIsRefusedBeforeWork) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  for (const char* set :
       {"--set model.vocab_size=2000000000", "--set model.d_ff=16000000 --set model.d_model=16384",
        "--set train.global_batch=16000000 --set model.seq_len=1024"}) {
    expectRefused(f, std::string("train --config tiny.toml --dry-run ") + set, "needs about");
    expectRefused(f, std::string("train --config tiny.toml --out run.moescope --metrics m.jsonl ") + set,
                  "needs about");
  }
  const CliResult r = f.run("train --config tiny.toml --dry-run --set model.vocab_size=2000000000");
  EXPECT_NE(r.err.find("GiB available"), std::string::npos) << r.err;
}

// 7. Only completed steps count: a run stopped before its first step completed has none, and a run
// stopped later counts exactly the steps its metrics list.
TEST(CliTrainSteps, AStopCountsOnlyCompletedSteps) {
  CliFolder f;
  f.write("tiny.toml", kTiny);
  // A slow first step: the run file appears, spans of step 0 arrive, and the stop comes first.
  const pid_t early = f.spawn(
      "train --config tiny.toml --set model.d_model=512 --set model.d_ff=2048 --set model.seq_len=256 "
      "--set train.global_batch=16 --set model.vocab_size=4096 --steps 10 --data random --out "
      "early.moescope");
  for (int i = 0; i < 2000 && !std::filesystem::exists(f.path("early.moescope")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(early, SIGINT);
  EXPECT_EQ(CliFolder::wait(early), 130) << f.spawnedErr();
  const auto earlyTrace = storage::RunReader::open(f.path("early.moescope"))->load();
  if (!earlyTrace.steps.empty()) GTEST_SKIP() << "the first step completed before the stop (a fast machine)";
  const CliResult early_stats = f.run("stats early.moescope --json");
  ASSERT_EQ(early_stats.code, 0) << early_stats.err;
  const auto je = nlohmann::json::parse(early_stats.out);
  EXPECT_EQ(je["step_summary"]["steps"], 0) << early_stats.out;
  EXPECT_EQ(je["step_summary"]["tokens_per_s"], 0.0);

  const pid_t later = f.spawn("train --config tiny.toml --steps 1000000 --data random --out later.moescope");
  ASSERT_TRUE(f.waitForErr("step 5/", 20000));
  kill(later, SIGINT);
  EXPECT_EQ(CliFolder::wait(later), 130);
  const auto laterTrace = storage::RunReader::open(f.path("later.moescope"))->load();
  const CliResult later_stats = f.run("stats later.moescope --json");
  ASSERT_EQ(later_stats.code, 0) << later_stats.err;
  const auto jl = nlohmann::json::parse(later_stats.out);
  EXPECT_EQ(jl["step_summary"]["steps"], laterTrace.steps.size());
  EXPECT_EQ(jl["steps"].size(), laterTrace.steps.size());
}

// 10. Messages: a folder or a device as the config is bad input with one line (not "ok", not a read
// until memory runs out).
TEST(CliTrainMessages, ConfigThatIsNotAFile) {
  CliFolder f;
  std::filesystem::create_directory(f.path("conf.d"));
  expectRefused(f, "train --config conf.d --dry-run", "is a folder");
  expectRefused(f, "train --config /dev/zero --dry-run", "not a regular file");
  f.write("huge.toml", "# " + std::string(2 << 20, 'x') + "\n");
  expectRefused(f, "train --config huge.toml --dry-run", "limit");
}

}  // namespace
}  // namespace moescope::engine
