// moescope-cli train over several processes, as a user launches it: `mpirun -np 4` on the CPU backend
// (and `-np 2 --ranks-per-process 2`) equals the single-process run of the same config (losses, saved
// weights); the merged run file holds every rank and opens in stats; a process's skewed clock is
// realigned within the stated uncertainty; a slowed rank is named the straggler; a killed process ends
// the job with its shards kept; bad input is one line and exit 2 with no run file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "engine/checkpoint.h"
#include "engine/config.h"
#include "storage/run_reader.h"
#include "storage/shard_merge.h"
#include "tests/common/binary_path.h"
#include "tests/common/sample_path.h"
#include "tests/common/temp_dir.h"

namespace moescope {
namespace {

namespace fs = std::filesystem;

const std::string kCli = moescope::testing::binaryPath("moescope-cli").string();
const std::string kGui = moescope::testing::binaryPath("moescope").string();
// -q: no launcher banners, so stderr holds moescope's own lines only.
const std::string kMpirun = "timeout 120 mpirun -q --oversubscribe --allow-run-as-root ";
const std::string kMpirunLoud = "timeout 120 mpirun --oversubscribe --allow-run-as-root ";
// Tiny models: each run takes about a second on 2 cores.
const std::string kTiny =
    " --backend cpu --set model.d_model=32 --set model.d_ff=64 --set model.seq_len=16 --set "
    "train.global_batch=8";

struct Result {
  int code = -1;
  std::string out, err;
};

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliTrainMpi : public ::testing::Test {
 protected:
  Result sh(const std::string& command) const {
    const std::string cmd = "cd '" + dir_.string() + "' && " + command + " > stdout.log 2> stderr.log";
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = readFile(dir_ / "stdout.log");
    r.err = readFile(dir_ / "stderr.log");
    fs::remove(dir_ / "stdout.log");
    fs::remove(dir_ / "stderr.log");
    return r;
  }
  std::string train(const std::string& config, const std::string& sets) const {
    return "'" + kCli + "' train --config '" + testing::samplePath(config).string() + "'" + kTiny + " " +
           sets;
  }
  std::vector<double> losses(const std::string& metrics) const {
    std::vector<double> out;
    std::istringstream lines(readFile(dir_ / metrics));
    std::string line;
    while (std::getline(lines, line)) out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
    return out;
  }
  engine::ModelWeights checkpoint(const std::string& config, const std::string& sets,
                                  const std::string& file) {
    engine::Config c = engine::loadConfigFile(testing::samplePath(config).string());
    for (const char* s : {"model.d_model=32", "model.d_ff=64", "model.seq_len=16"})
      engine::applyOverride(c, s);
    std::istringstream words(sets);
    std::string w;
    while (words >> w) {
      if (w != "--set") engine::applyOverride(c, w);
    }
    return engine::loadCheckpoint((dir_ / file).string(), c.model);
  }

  const testing::TempDir temp_{"mpi"};
  const fs::path dir_ = temp_.path();
};

struct Layout {
  const char* name;
  const char* config;
  const char* sets;  // --set options that make the layout
};

const Layout kLayouts[] = {{"ppmoe_pp2_tp2", "ppmoe.toml", ""},
                           {"dpmoe_pp2_dp2", "dpmoe.toml", ""},
                           {"dense_tp2_dp2", "dense.toml", "--set parallel.pp=1 --set parallel.dp=2"}};

void expectClose(const std::vector<double>& a, const std::vector<double>& b, double rel,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_LE(std::abs(a[i] - b[i]), rel * std::abs(b[i])) << what << " step " << i;
}

void expectSameWeights(const engine::ModelWeights& a, const engine::ModelWeights& b,
                       const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t t = 0; t < a.size(); ++t) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a[t].data.size(); ++i) {
      diff = std::max(diff, std::abs(static_cast<double>(a[t].data[i]) - b[t].data[i]));
      norm = std::max(norm, std::abs(static_cast<double>(b[t].data[i])));
    }
    EXPECT_LE(diff, 1e-5 * std::max(norm, 1e-30)) << what << ": " << a[t].name;
  }
}

// Every rank's spans are in the merged run, which is complete and opens in stats.
void expectWholeRun(const fs::path& run, int ranks) {
  const storage::Trace t = storage::RunReader::open(run)->load();
  EXPECT_EQ(t.run.status, storage::RunStatus::Complete) << t.run.error;
  ASSERT_EQ(static_cast<int>(t.ranks.size()), ranks);
  std::map<int32_t, size_t> spans;
  for (size_t k = 0; k < t.tracks.size(); ++k) spans[t.tracks[k].rank] += t.spans[k].size();
  for (int r = 0; r < ranks; ++r) EXPECT_GT(spans[r], 10u) << "rank " << r;
}

TEST_F(CliTrainMpi, FourProcessesAndTwoHybridProcessesEqualTheSingleProcessRun) {
  for (const Layout& l : kLayouts) {
    // --force: each layout replaces the previous layout's outputs.
    const std::string sets = std::string(l.sets) + " --steps 3 --force";
    Result r = sh(train(l.config, sets) + " --metrics one.jsonl --save one.safetensors");
    ASSERT_EQ(r.code, 0) << l.name << r.err;
    r = sh(kMpirun + "-np 4 " + train(l.config, sets) +
           " --out four.moescope --metrics four.jsonl --save four.safetensors");
    ASSERT_EQ(r.code, 0) << l.name << r.err;
    r = sh(kMpirun + "-np 2 " + train(l.config, sets) +
           " --ranks-per-process 2 --out two.moescope --metrics two.jsonl --save two.safetensors");
    ASSERT_EQ(r.code, 0) << l.name << r.err;
    expectClose(losses("four.jsonl"), losses("one.jsonl"), 1e-6, std::string(l.name) + " -np 4");
    expectClose(losses("two.jsonl"), losses("one.jsonl"), 1e-6, std::string(l.name) + " hybrid");
    const engine::ModelWeights one = checkpoint(l.config, l.sets, "one.safetensors");
    expectSameWeights(checkpoint(l.config, l.sets, "four.safetensors"), one, std::string(l.name) + " -np 4");
    expectSameWeights(checkpoint(l.config, l.sets, "two.safetensors"), one, std::string(l.name) + " hybrid");
    expectWholeRun(dir_ / "four.moescope", 4);
    expectWholeRun(dir_ / "two.moescope", 4);
    EXPECT_TRUE(fs::exists(dir_ / "four.moescope.shards" / "shard-3.moescope"));
    r = sh("'" + kCli + "' stats four.moescope");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("waits"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("clock alignment per rank"), std::string::npos) << r.out;
  }
}

TEST_F(CliTrainMpi, TheMergedRunRendersInTheGui) {
  if (!fs::exists(kGui)) GTEST_SKIP() << "the GUI is not built here (MOESCOPE_GUI=OFF)";
  ASSERT_EQ(sh(kMpirun + "-np 4 " + train("ppmoe.toml", "--steps 2") + " --out run.moescope").code, 0);
  const Result r = sh("QT_QPA_PLATFORM=offscreen '" + kGui + "' --render run.png run.moescope");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_GT(fs::file_size(dir_ / "run.png"), 1000u);
}

// Process 1's clock is set 50 ms behind: its shard's times are 50 ms early, so its receives would end
// before the sends they receive. The merged run moves them back by the measured offset: every receive
// ends after its send started, within the stated uncertainty.
TEST_F(CliTrainMpi, ASkewedClockIsRealignedWithinTheStatedUncertainty) {
  constexpr int64_t kSkew = 50'000'000;
  const std::string cmd = train("ppmoe.toml", "--set parallel.tp=1 --steps 2") + " --out run.moescope";
  const Result r = sh(kMpirun + "-np 1 " + cmd + " : -np 1 env MOESCOPE_TEST_CLOCK_SKEW_NS=-" +
                      std::to_string(kSkew) + " " + cmd);
  ASSERT_EQ(r.code, 0) << r.err;
  const storage::Trace t = storage::RunReader::open(dir_ / "run.moescope")->load();
  std::map<std::string, std::string> meta(t.meta.begin(), t.meta.end());
  const int64_t offset = std::stoll(meta["rank.1.clock.offset_ns"]);
  const int64_t uncertainty = std::stoll(meta["rank.1.clock.uncertainty_ns"]);
  EXPECT_EQ(meta["rank.1.clock.source"], "mpi ping-pong");
  EXPECT_GT(uncertainty, 0);
  EXPECT_LT(uncertainty, 5'000'000);  // half a round trip between two processes of one host
  EXPECT_LE(std::abs(offset - kSkew), uncertainty);
  // Sends of rank 0 to rank 1 and rank 1's receives from rank 0, matched by (communicator, sequence).
  std::map<std::pair<int32_t, int32_t>, int64_t> sendStart;
  std::vector<std::tuple<int32_t, int32_t, int64_t>> recvEnd;
  for (size_t k = 0; k < t.tracks.size(); ++k) {
    const storage::SpanColumns& c = t.spans[k];
    for (size_t i = 0; i < c.size(); ++i) {
      const storage::SpanView v = c.at(i, static_cast<int32_t>(k));
      if (v.category != storage::Category::CommPpSendrecv) continue;
      const std::string name(t.name(v.name));
      if (t.tracks[k].rank == 0 && name == "send_activation") sendStart[{v.comm, v.seq}] = v.start;
      if (t.tracks[k].rank == 1 && name == "recv_activation") recvEnd.emplace_back(v.comm, v.seq, v.end);
    }
  }
  ASSERT_FALSE(recvEnd.empty());
  for (const auto& [comm, seq, end] : recvEnd) {
    ASSERT_TRUE(sendStart.count({comm, seq})) << comm << " " << seq;
    const int64_t sent = sendStart[{comm, seq}];
    EXPECT_GE(end, sent - uncertainty) << "receive " << seq << " ends before its send";
    // Uncorrected (the shard's own times), the receive ends before the send began.
    EXPECT_LT(end - offset, sent) << seq;
  }
  const Result stats = sh("'" + kCli + "' stats run.moescope");
  EXPECT_NE(stats.out.find("mpi ping-pong"), std::string::npos) << stats.out;
}

TEST_F(CliTrainMpi, ASlowedRankIsNamedTheStraggler) {
  // 50 ms before each of its passes: the delay dwarfs the noise of 4 processes sharing 2 busy cores.
  const Result r = sh("MOESCOPE_TEST_SLOW_RANK=1:50 " + kMpirun + "-np 4 " +
                      train("ppmoe.toml", "--steps 2") + " --out run.moescope");
  ASSERT_EQ(r.code, 0) << r.err;
  const Result stats = sh("'" + kCli + "' stats --json run.moescope");
  ASSERT_EQ(stats.code, 0) << stats.err;
  const auto j = nlohmann::json::parse(stats.out);
  const auto& waits = j["waits"];
  ASSERT_FALSE(waits["stragglers"].empty());
  EXPECT_EQ(waits["stragglers"][0]["rank"], 1) << waits.dump();
  int64_t othersWaited = 0, onOne = 0;
  for (const auto& rank : waits["ranks"]) {
    if (rank["rank"] == 1) continue;
    othersWaited += rank["waited_ns"].get<int64_t>();
    for (const auto& on : rank["on"])
      if (on["rank"] == 1) onOne += on["ns"].get<int64_t>();
  }
  EXPECT_GE(static_cast<double>(onOne), 0.9 * static_cast<double>(othersWaited)) << waits.dump();
}

TEST_F(CliTrainMpi, AFailingRankEndsTheJobNamingIt) {
  const Result r = sh("MOESCOPE_TEST_FAIL_RANK=2 " + kMpirun + "-np 4 " + train("ppmoe.toml", "--steps 3") +
                      " --out run.moescope");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("failed: rank 2: failing on purpose"), std::string::npos) << r.err;
  // The shards stay, and merge into a run marked failed.
  const storage::MergeReport m =
      storage::mergeShards(storage::listShards(dir_ / "run.moescope.shards"), dir_ / "merged.moescope");
  EXPECT_EQ(m.shards, 4);
  EXPECT_EQ(m.status, storage::RunStatus::Failed);
}

// kill -9 of one process at a random moment, five times: the job ends within 30 s naming the rank, no
// shard is lost, and the merged run opens marked failed with the spans that survived.
TEST_F(CliTrainMpi, AKilledProcessEndsTheJobAndLeavesEveryShard) {
  std::mt19937 random(12345);
  for (int attempt = 0; attempt < 5; ++attempt) {
    const std::string out = "kill" + std::to_string(attempt) + ".moescope";
    // Without -q: the launcher's line naming the rank that died is what this test looks for.
    fs::remove(dir_ / "kill.log");
    const std::string cmd = "cd '" + dir_.string() + "' && MOESCOPE_TEST_SLOW_RANK=0:10 exec " + kMpirunLoud +
                            "-np 4 " + train("ppmoe.toml", "--steps 20") + " --out " + out + " 2> kill.log";
    const pid_t launcher = fork();
    if (launcher == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    // Wait until every shard has its first step (the run is under way), then a random moment more.
    const fs::path shards = dir_ / (out + ".shards");
    for (int waited = 0; waited < 20000; waited += 20) {
      if (readFile(dir_ / "kill.log").find("step 1/") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 400)(random)));
    // The victim: one of the moescope-cli processes under the launcher (timeout, then mpirun).
    std::vector<pid_t> children;
    std::vector<pid_t> todo{launcher};
    while (!todo.empty()) {
      const pid_t p = todo.back();
      todo.pop_back();
      std::istringstream list(
          readFile("/proc/" + std::to_string(p) + "/task/" + std::to_string(p) + "/children"));
      for (pid_t c; list >> c;) {
        todo.push_back(c);
        if (readFile("/proc/" + std::to_string(c) + "/comm") == "moescope-cli\n") children.push_back(c);
      }
    }
    ASSERT_EQ(children.size(), 4u) << "attempt " << attempt;
    const pid_t victim = children[std::uniform_int_distribution<size_t>(0, 3)(random)];
    std::string environ = readFile("/proc/" + std::to_string(victim) + "/environ");
    std::replace(environ.begin(), environ.end(), '\0', '\n');
    const auto at = environ.find("OMPI_COMM_WORLD_RANK=");
    ASSERT_NE(at, std::string::npos);
    const std::string rank = environ.substr(at + 21, environ.find('\n', at) - at - 21);
    ::kill(victim, SIGKILL);
    const auto t0 = std::chrono::steady_clock::now();
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(launcher, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (done == 0) {
      ::kill(launcher, SIGKILL);
      waitpid(launcher, &status, 0);
      FAIL() << "attempt " << attempt << ": the job did not stop within 30 s";
    }
    EXPECT_NE(status, 0);
    const std::string log = readFile(dir_ / "kill.log");
    EXPECT_NE(log.find("process rank " + rank + " with PID"), std::string::npos) << log;
    EXPECT_NE(log.find("exited on signal 9 (Killed)"), std::string::npos) << log;
    const auto files = storage::listShards(shards);
    EXPECT_EQ(files.size(), 4u) << "attempt " << attempt;
    const storage::MergeReport m = storage::mergeShards(files, dir_ / ("merged-" + out));
    EXPECT_EQ(m.status, storage::RunStatus::Failed) << "attempt " << attempt;
    EXPECT_TRUE(m.missing.empty());
    EXPECT_FALSE(m.stopped.empty());
    EXPECT_GT(m.spans, 0);
    const storage::Trace t = storage::RunReader::open(dir_ / ("merged-" + out))->load();
    EXPECT_EQ(t.run.status, storage::RunStatus::Failed);
  }
}

// The CUDA backend under mpirun: one process holding every rank (NCCL within it) equals the run
// started by hand. Needs a CUDA build and a GPU per rank; skips, saying which is missing, elsewhere.
TEST_F(CliTrainMpi, CudaInOneProcessEqualsTheSingleProcessRun) {
  for (const auto& [ranks, sets] : std::vector<std::pair<int, std::string>>{
           {1, "--set parallel.pp=1 --set parallel.tp=1"}, {2, "--set parallel.tp=1"}}) {
    const std::string cuda = "'" + kCli + "' train --config '" + testing::samplePath("ppmoe.toml").string() +
                             "' --backend cuda --set train.precision=fp32 --steps 3 --force " + sets;
    const Result check = sh(cuda + " --dry-run");
    if (check.code != 0) {
      if (ranks == 1) GTEST_SKIP() << "no CUDA run here: " << check.err;
      std::printf("[  SKIPPED ] %d ranks: %s", ranks, check.err.c_str());
      continue;
    }
    ASSERT_EQ(sh(cuda + " --metrics one.jsonl").code, 0);
    const Result r = sh(kMpirun + "-np 1 " + cuda + " --ranks-per-process " + std::to_string(ranks) +
                        " --out run.moescope --metrics mpi.jsonl");
    ASSERT_EQ(r.code, 0) << r.err;
    expectClose(losses("mpi.jsonl"), losses("one.jsonl"), 1e-6, "cuda, " + std::to_string(ranks) + " ranks");
    expectWholeRun(dir_ / "run.moescope", ranks);
  }
}

// The CUDA backend over two processes, one GPU each, NCCL's ids carried over MPI: pp 2 (send/recv
// between the processes) and tp 2 (all-reduces across them) equal the run started by hand, and the
// merged run has both ranks with their calls' identities. Needs 2 GPUs; on one GPU the second process
// is refused before any run (its local rank names a GPU the node lacks).
TEST_F(CliTrainMpi, CudaOverTwoProcessesEqualsTheSingleProcessRun) {
  const std::string base = "'" + kCli + "' train --config '" + testing::samplePath("ppmoe.toml").string() +
                           "' --backend cuda --set train.precision=fp32 --steps 3 --force ";
  const Result probe = sh(base + "--set parallel.pp=1 --set parallel.tp=1 --dry-run");
  if (probe.code != 0) GTEST_SKIP() << "no CUDA run here: " << probe.err;
  const Result two = sh(base + "--set parallel.tp=1 --dry-run");
  if (two.code != 0) {
    const Result r = sh(kMpirun + "-np 2 " + base + "--set parallel.tp=1 --out run.moescope");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("by its local rank"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "run.moescope"));
    GTEST_SKIP() << "fewer than 2 GPUs here (the second process was refused as it should be): " << two.err;
  }
  for (const std::string sets : {"--set parallel.tp=1", "--set parallel.pp=1"}) {
    ASSERT_EQ(sh(base + sets + " --metrics one.jsonl").code, 0) << sets;
    const Result r = sh(kMpirun + "-np 2 " + base + sets + " --out run.moescope --metrics mpi.jsonl");
    ASSERT_EQ(r.code, 0) << sets << r.err;
    expectClose(losses("mpi.jsonl"), losses("one.jsonl"), 1e-6, "cuda over 2 processes, " + sets);
    expectWholeRun(dir_ / "run.moescope", 2);
    const storage::Trace t = storage::RunReader::open(dir_ / "run.moescope")->load();
    size_t identified = 0;
    for (const auto& spans : t.spans) {
      for (size_t i = 0; i < spans.size(); ++i) {
        const storage::SpanView v = spans.at(i, 0);
        if (v.comm != storage::kNone && v.seq != storage::kNone) ++identified;
      }
    }
    EXPECT_GT(identified, 0u) << sets << ": no communication call has its identity";
  }
}

TEST_F(CliTrainMpi, BadInputIsOneLineAndExit2WithNoRunFile) {
  auto expectBad = [&](const std::string& command, const std::string& words) {
    const Result r = sh(command);
    EXPECT_EQ(r.code, 2) << command << "\n" << r.err;
    EXPECT_NE(r.err.find(words), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "run.moescope"));
    EXPECT_FALSE(fs::exists(dir_ / "run.moescope.shards"));
  };
  // 2 processes of 1 rank for a layout of 4 ranks.
  expectBad(kMpirun + "-np 2 " + train("ppmoe.toml", "--steps 1") + " --out run.moescope",
            "world size mismatch");
  // Process 1 runs another learning rate.
  const std::string cmd = train("ppmoe.toml", "--steps 1 --set parallel.tp=1") + " --out run.moescope";
  expectBad(kMpirun + "-np 1 " + cmd + " : -np 1 " + cmd + " --set train.lr=0.5",
            "process 1's config differs from process 0's");
  // Only process 1 finds a problem (its data file is missing): every process stops within the limit,
  // the one line naming the process.
  expectBad(kMpirun + "-np 1 " + cmd + " : -np 1 " + cmd + " --data missing-tokens.bin", "process 1: ");
  // --ranks-per-process without a launcher.
  expectBad(train("ppmoe.toml", "--steps 1") + " --ranks-per-process 2 --out run.moescope",
            "--ranks-per-process needs a launch by mpirun or srun");
}

}  // namespace
}  // namespace moescope
