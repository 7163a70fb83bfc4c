// moescope-cli train, run as a user runs it (the built binary): a good run writes its run file, metrics
// and checkpoint; every kind of bad input is exit 2 with a one-line message naming the problem and no
// file written; `moescope-cli stats` on a GPipe run reports the bubble share near the theory.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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
#include "tests/common/temp_dir.h"

namespace moescope::engine {
namespace {

namespace fs = std::filesystem;

const std::string kCli = std::string(MOESCOPE_BINARY_DIR) + "/bin/moescope-cli";

struct Result {
  int code = -1;
  std::string out, err;
};

class CliTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    writeFile("tiny.toml", R"([model]
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
)");
  }

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

// Ctrl-C: the run stops between micro-batches, its run file marked cancelled, no metrics or checkpoint
// left behind under their final names.
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
  EXPECT_FALSE(fs::exists(dir_ / "m.jsonl"));
  EXPECT_FALSE(fs::exists(dir_ / "m.jsonl.tmp"));
  EXPECT_FALSE(fs::exists(dir_ / "ck.safetensors"));
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
