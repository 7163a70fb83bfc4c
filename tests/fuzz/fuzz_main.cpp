// moescope_fuzz: runs moescope-cli on mutated inputs and checks the promise every command makes to bad
// input (docs/RELIABILITY.md): exit 0 or 2, never a crash; on 2 one line on stderr; no sanitizer report
// (the CI build runs it against moescope-cli built with ASan and UBSan); JSON that is output parses with
// a strict decoder and CSV holds no NUL byte.
//
//   moescope_fuzz --cli PATH [--cases N] [--seed S] [--keep DIR] [--work DIR]
//
// --cases is per input kind (run files, configs, .npy, safetensors, PyTorch profiler traces). Deterministic:
// the same seed gives the same cases. A failing case is kept under --keep (default: the work folder) with its
// command line, and reported; the exit status is the number of failures (capped at 100).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fuzz_cases.h"

namespace {

namespace fs = std::filesystem;
using moescope::fuzz::Case;
using moescope::fuzz::Mutator;
using moescope::fuzz::Seeds;

// A case gets 60 s of CPU time (RLIMIT_CPU: a loop is found whatever the machine's load) and 600 s
// of wall time (a command blocked on something). Every case takes about 2 s under ASan; on the shared
// 2-core host at a load of 15 to 30, cases that needed 2 s of CPU passed 60 s of wall time in bursts.
constexpr int kCpuSeconds = 60;
constexpr int kWallSeconds = 600;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Outcome {
  int code = -1;          // exit status, or 128 + signal
  bool timedOut = false;  // past kWallSeconds
  bool cpuLimit = false;  // past kCpuSeconds
  std::string out, err;
};

// Runs cli with args in dir, stdout and stderr to files there, within kCpuSeconds and kWallSeconds.
Outcome runCli(const fs::path& cli, const std::vector<std::string>& args, const fs::path& dir) {
  const fs::path out = dir / ".stdout", err = dir / ".stderr";
  const pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(126);
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    // SIGXCPU at the limit, SIGKILL 5 s of CPU later should it be caught.
    const rlimit cpu{kCpuSeconds, kCpuSeconds + 5};
    setrlimit(RLIMIT_CPU, &cpu);
    std::vector<char*> argv{const_cast<char*>(cli.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(cli.c_str(), argv.data());
    _exit(127);
  }
  Outcome r;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kWallSeconds);
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.timedOut = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.cpuLimit =
      WIFSIGNALED(status) && (WTERMSIG(status) == SIGXCPU || (WTERMSIG(status) == SIGKILL && !r.timedOut));
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

// What is wrong with an outcome, or "" when the promise held.
std::string judge(const Case& c, const Outcome& r, const fs::path& dir) {
  if (r.timedOut) return "no answer within " + std::to_string(kWallSeconds) + " s";
  if (r.cpuLimit) return "more than " + std::to_string(kCpuSeconds) + " s of CPU time";
  for (const char* report :
       {"runtime error:", "AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer"}) {
    if (r.err.find(report) != std::string::npos) return std::string("sanitizer report (") + report + ")";
  }
  if (r.code != 0 && r.code != 2) return "exit " + std::to_string(r.code) + " (0 or 2 expected)";
  if (r.code == 2) {
    const auto lines = std::count(r.err.begin(), r.err.end(), '\n');
    if (lines != 1 || r.err.rfind("moescope-cli", 0) != 0) return "exit 2 without exactly one line on stderr";
    return "";
  }
  if (c.stdoutIsJson && !nlohmann::json::accept(r.out)) return "stdout is not strict JSON";
  if (!c.jsonFile.empty() && !nlohmann::json::accept(slurp(dir / c.jsonFile)))
    return c.jsonFile + " is not strict JSON";
  if (!c.csvFile.empty() && slurp(dir / c.csvFile).find('\0') != std::string::npos)
    return c.csvFile + " holds a NUL byte";
  return "";
}

std::string commandLine(const std::vector<std::string>& args) {
  std::string s = "moescope-cli";
  for (const std::string& a : args) s += " '" + a + "'";
  return s;
}

// The good inputs, made by the moescope-cli under test (so the writer and a real training step run
// under the sanitizers too).
Seeds makeSeeds(const fs::path& cli, const fs::path& dir) {
  Seeds s;
  s.dir = dir;
  fs::create_directories(dir);
  s.config = dir / "tiny.toml";
  std::ofstream(s.config)
      << "[model]\nvocab_size = 256\nseq_len = 8\nd_model = 16\nn_heads = 4\nn_layers = 2\n"
         "d_ff = 32\nn_experts = 4\ntop_k = 2\nmoe_every = 2\ncapacity_factor = 1.0\n"
         "[parallel]\npp = 2\ntp = 2\nmicrobatches = 2\n[train]\nglobal_batch = 4\nsteps = 3\n";
  s.run = dir / "seed.moescope";
  s.safetensors = dir / "seed.safetensors";
  const Outcome trained = runCli(cli,
                                 {"train", "--config", "tiny.toml", "--backend", "cpu", "--out",
                                  "seed.moescope", "--save", "seed.safetensors", "--force"},
                                 dir);
  if (trained.code != 0) throw std::runtime_error("making the seed run failed: " + trained.err);
  // 2,000 tokens below 256 as a version-1 .npy of uint16.
  s.npy = dir / "seed.npy";
  std::string header = "{'descr': '<u2', 'fortran_order': False, 'shape': (2000,), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = "\x93NUMPY\x01";
  bytes += '\0';
  bytes += static_cast<char>(header.size() & 0xFF);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  for (int i = 0; i < 2000; ++i) {
    bytes += static_cast<char>((i * 7) % 256);
    bytes += '\0';
  }
  std::ofstream(s.npy, std::ios::binary) << bytes;
  for (int rank = 0; rank < 2; ++rank) {
    const std::string name = "pp2-rank" + std::to_string(rank) + ".json";
    s.kineto[rank] = dir / name;
    fs::copy_file(fs::path(MOESCOPE_SOURCE_DIR) / "tests/storage/kineto" / name, s.kineto[rank],
                  fs::copy_options::overwrite_existing);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path cli, work = fs::temp_directory_path() / ("moescope_fuzz_" + std::to_string(getpid())), keep;
  int cases = 100;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--cli")
      cli = fs::absolute(value);
    else if (key == "--cases")
      cases = std::stoi(value);
    else if (key == "--seed")
      seed = std::stoull(value);
    else if (key == "--keep")
      keep = fs::absolute(value);
    else if (key == "--work")
      work = fs::absolute(value);
  }
  if (cli.empty() || !fs::exists(cli)) {
    std::fprintf(stderr, "moescope_fuzz: give --cli PATH of moescope-cli\n");
    return 2;
  }
  if (keep.empty()) keep = work / "failures";
  fs::remove_all(work);
  const Seeds seeds = makeSeeds(cli, work / "seeds");
  const std::vector<std::pair<std::string, std::function<Case(Mutator&, const Seeds&, const fs::path&)>>>
      kinds = {{"run file", moescope::fuzz::runFileCase},
               {"config", moescope::fuzz::configCase},
               {"npy", moescope::fuzz::npyCase},
               {"safetensors", moescope::fuzz::safetensorsCase},
               {"kineto", moescope::fuzz::kinetoCase}};
  int failures = 0;
  std::map<std::string, std::map<int, int>> codes;  // kind -> exit code -> cases
  const auto start = std::chrono::steady_clock::now();
  for (const auto& [kind, make] : kinds) {
    for (int i = 0; i < cases; ++i) {
      // Each case's own stream, so a failing case is reproduced by its seed and index alone.
      Mutator m(seed * 0x9E3779B97F4A7C15ull + std::hash<std::string>{}(kind) + static_cast<uint64_t>(i));
      const fs::path dir = work / "case";
      fs::remove_all(dir);
      fs::create_directories(dir);
      const Case c = make(m, seeds, dir);
      const Outcome r = runCli(cli, c.args, dir);
      ++codes[kind][r.code];
      const std::string problem = judge(c, r, dir);
      if (problem.empty()) continue;
      ++failures;
      const fs::path kept = keep / (kind + "-" + std::to_string(i));
      fs::remove_all(kept);
      fs::create_directories(kept.parent_path());
      fs::rename(dir, kept);
      std::ofstream(kept / "command.txt") << commandLine(c.args) << "\n";
      std::printf("FAIL %s case %d: %s\n  mutations:%s\n  command: %s (in %s)\n  exit %d, stderr:\n%s\n",
                  kind.c_str(), i, problem.c_str(), c.what.c_str(), commandLine(c.args).c_str(), kept.c_str(),
                  r.code, r.err.substr(0, 4000).c_str());
      std::fflush(stdout);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& [kind, byCode] : codes) {
    std::printf("%-12s", kind.c_str());
    for (const auto& [code, n] : byCode) std::printf("  exit %d: %d", code, n);
    std::printf("\n");
  }
  std::printf("moescope_fuzz: %d cases of each of %zu kinds (seed %llu) in %.1f s, %d failing\n", cases,
              kinds.size(), static_cast<unsigned long long>(seed), seconds, failures);
  if (failures == 0) fs::remove_all(work);
  return std::min(failures, 100);
}
