// moescope-cli record [options] -- CMD ARGS...: runs CMD with moescope's injection library
// (tracer/inject/) named in NVTX_INJECTION64_PATH and CUDA_INJECTION64_PATH, so that every process it
// starts that calls NVTX or CUDA writes a shard into RUN.moescope.shards/; once CMD has ended, the
// shards are merged into RUN.moescope. CMD's stdin, stdout, stderr and exit code pass through; record's
// own lines go to stderr, prefixed "moescope:".
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "app/cli_commands.h"
#include "storage/import_layout.h"
#include "storage/output_file.h"
#include "storage/record_shard.h"
#include "storage/rules.h"
#include "storage/run_reader.h"
#include "storage/shard_merge.h"
#include "storage/storage_error.h"
#include "tracer/record_env.h"

namespace moescope::app {
namespace {

namespace fs = std::filesystem;

struct RecordCliOptions {
  std::string output = "record.moescope";
  std::optional<int32_t> pp, tp, dp;
  std::string order = "tp-dp-pp";
  std::string schedule = "1f1b";
  std::vector<std::string> rules;
  std::string steps;
  bool noNvtx = false, noKernels = false, force = false;
  std::string launchCalls = "activity";
  std::vector<std::string> command;
};

void say(const std::string& text) {
  std::fprintf(stderr, "moescope: %s\n", text.c_str());
}

// The injection library: MOESCOPE_INJECT_LIBRARY, else beside moescope-cli's build or install
// (bin/../lib, then bin/).
std::optional<fs::path> injectionLibrary() {
  if (const char* p = std::getenv("MOESCOPE_INJECT_LIBRARY"); p && *p) return fs::path(p);
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return std::nullopt;
  for (const fs::path& candidate : {self.parent_path().parent_path() / "lib" / "libmoescope_inject.so",
                                    self.parent_path() / "libmoescope_inject.so"}) {
    if (fs::exists(candidate, ec)) return fs::absolute(candidate, ec);
  }
  return std::nullopt;
}

// CMD as execvp would find it, or nothing.
std::optional<fs::path> findCommand(const std::string& name) {
  auto runnable = [](const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos)
    return runnable(name) ? std::optional<fs::path>(name) : std::nullopt;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t from = 0;
  while (from <= dirs.size()) {
    const size_t at = dirs.find(':', from);
    const std::string dir = dirs.substr(from, at == std::string::npos ? std::string::npos : at - from);
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (runnable(candidate)) return candidate;
    if (at == std::string::npos) break;
    from = at + 1;
  }
  return std::nullopt;
}

// RUN.moescope.shards/, empty: an earlier recording's shards are removed; a folder holding anything
// else is refused rather than emptied.
bool prepareShardDir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      say(dir.string() + " exists and is not a folder; remove it or choose another --output");
      return false;
    }
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("shard-", 0) != 0 && name.rfind(".shard-", 0) != 0) {
        say(dir.string() + " holds " + name + ", not a shard; remove it or choose another --output");
        return false;
      }
    }
    fs::remove_all(dir, ec);
  }
  fs::create_directories(dir, ec);
  if (ec) {
    say(dir.string() + ": cannot create the shards folder: " + ec.message());
    return false;
  }
  return true;
}

pid_t g_child = 0;
void forward(int signal) {
  if (g_child > 0) ::kill(g_child, signal);
}

// Runs the command with the environment added; returns its exit code (128 + signal when killed).
int runCommand(const std::vector<std::string>& command,
               const std::vector<std::pair<std::string, std::string>>& environment) {
  std::fflush(nullptr);
  // SIGINT from a terminal reaches the child too (same process group) and is ignored here, so that
  // record outlives the command and merges what it wrote; SIGTERM sent to record is passed on. Both are
  // blocked from before the fork until the child's id is known, so neither can end record (SIGINT) or be
  // lost (SIGTERM, before there is a child to pass it to) in between; the child restores both before
  // exec, since an ignored signal stays ignored across exec.
  sigset_t both, before;
  sigemptyset(&both);
  sigaddset(&both, SIGINT);
  sigaddset(&both, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &both, &before);
  struct sigaction action {};
  action.sa_handler = forward;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  ::signal(SIGINT, SIG_IGN);
  const pid_t child = ::fork();
  if (child < 0) {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
    say(std::string("cannot start the command: fork failed"));
    return 1;
  }
  if (child == 0) {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
    for (const auto& [k, v] : environment) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "moescope: %s: cannot run it\n", argv[0]);
    ::_exit(127);
  }
  g_child = child;
  ::sigprocmask(SIG_SETMASK, &before, nullptr);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  g_child = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

std::string runId() {
  std::random_device random;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld-%08x",
                static_cast<long long>(std::chrono::system_clock::now().time_since_epoch().count()),
                random());
  return buf;
}

int runRecord(const RecordCliOptions& o) {
  // Everything that can be wrong with the arguments is said before CMD starts.
  tracer::RecordSettings settings;
  try {
    std::vector<fs::path> ruleFiles(o.rules.begin(), o.rules.end());
    const storage::RuleSet rules = storage::rulesFor(ruleFiles);
    (void)rules;
  } catch (const storage::RulesError& e) {
    say(e.what());
    return 2;
  }
  std::string problem;
  if (!storage::parseRankOrder(o.order, problem)) {
    say(problem);
    return 2;
  }
  if (!o.steps.empty()) {
    settings.steps = storage::parseStepRange(o.steps, problem);
    if (!settings.steps) {
      say(problem);
      return 2;
    }
  }
  const fs::path output = o.output;
  std::error_code ec;
  try {
    // Checked before the command starts: a folder, link or device, or an existing run without --force,
    // is refused. The merge writes the run later through its own temporary file, renamed when whole.
    storage::OutputFile::open({"-o", output}, o.force, storage::OutputFile::Kind::RunFile)->discard();
  } catch (const storage::OutputRefused& e) {
    say(e.what());
    return 2;
  }
  const auto library = injectionLibrary();
  if (!library) {
    say("the injection library libmoescope_inject.so is not beside moescope-cli (lib/ or bin/); set "
        "MOESCOPE_INJECT_LIBRARY");
    return 2;
  }
  if (!findCommand(o.command.front())) {
    say(o.command.front() + ": command not found");
    return 127;
  }

  const fs::path shardDir = storage::shardsFolderName(output.string());
  if (!prepareShardDir(shardDir)) return 2;
  settings.dir = fs::absolute(shardDir, ec).string();
  settings.run_id = runId();
  for (const std::string& r : o.rules) settings.rules.push_back(fs::absolute(r, ec).string());
  settings.pp = o.pp.value_or(1);
  settings.tp = o.tp.value_or(1);
  settings.dp = o.dp.value_or(1);
  settings.order = o.order;
  settings.schedule = o.schedule;
  settings.nvtx = !o.noNvtx;
  settings.kernels = !o.noKernels;
  // Checked by CLI11 against the same names (registerRecord).
  settings.launchCalls =
      tracer::launchCallRecordingFromName(o.launchCalls).value_or(tracer::LaunchCallRecording::Activity);
  settings.command = joined(o.command);
  auto environment = tracer::recordEnvironment(settings);
  for (const char* variable : {"NVTX_INJECTION64_PATH", "CUDA_INJECTION64_PATH"}) {
    const bool wanted =
        std::string_view(variable) == "NVTX_INJECTION64_PATH" ? settings.nvtx : settings.kernels;
    if (!wanted) continue;
    if (const char* before = std::getenv(variable); before && *before && library->string() != before)
      say(std::string(variable) + " was " + before + "; replaced by moescope's injection library");
    environment.emplace_back(variable, library->string());
  }

  const int code = runCommand(o.command, environment);

  std::vector<fs::path> shards;
  try {
    shards = storage::listShards(shardDir);
  } catch (const storage::StorageError&) {
    // No process wrote a shard: said below.
  }
  if (shards.empty()) {
    say("no process of the command called NVTX or CUDA: nothing was recorded, no run file written");
    fs::remove_all(shardDir, ec);
    return code;
  }
  storage::MergeReport report;
  std::vector<int32_t> ranks;
  try {
    for (const fs::path& shard : shards) {
      const storage::ShardInfo info = storage::readShardInfo(shard);
      ranks.insert(ranks.end(), info.ranks.begin(), info.ranks.end());
    }
    report = storage::mergeShards(shards, output);
    if (code != 0) storage::markRunFailed(output, "the command exited with status " + std::to_string(code));
  } catch (const storage::StorageError& e) {
    say(std::string("the shards were not merged: ") + e.what() + "; they are kept in " + shardDir.string());
    return code != 0 ? code : 1;
  }
  std::sort(ranks.begin(), ranks.end());
  if (!report.error.empty()) say(report.error);
  // GPU work: said once for the whole run, not per process.
  bool gpu = false;
  std::string why;
  for (const fs::path& shard : shards) {
    try {
      const storage::Trace t = storage::RunReader::open(shard)->load();
      for (const auto& [k, v] : t.meta) {
        if (k != "record.gpu") continue;
        if (v == "cupti") gpu = true;
        if (v != "cupti" && why.empty()) why = v.rfind("off: ", 0) == 0 ? v.substr(5) : v;
      }
    } catch (const storage::StorageError&) {
    }
  }
  if (!gpu && settings.kernels) say("no GPU work was recorded (" + why + "): host NVTX ranges only");
  std::string rankList;
  for (int32_t r : ranks) rankList += (rankList.empty() ? "" : " ") + std::to_string(r);
  say("recorded " + std::to_string(report.shards) + " process" + (report.shards == 1 ? "" : "es") + " (rank" +
      (ranks.size() == 1 ? " " : "s ") + rankList + "): " + std::to_string(report.spans) + " spans, " +
      std::to_string(report.gpu_records) + " GPU records in " + output.string() +
      (code != 0 || report.status != storage::RunStatus::Complete ? " (marked failed)" : ""));
  fs::remove_all(shardDir, ec);
  return code;
}

}  // namespace

void registerRecord(CLI::App& cli, CommandAction& action) {
  auto o = std::make_shared<RecordCliOptions>();
  auto* cmd = cli.add_subcommand(
      "record",
      "Profile any CUDA job: run CMD with moescope's injection library (NVTX and CUPTI), so every process\n"
      "it starts (a torchrun job's workers too) records its NVTX ranges, CUDA launch calls, kernels,\n"
      "copies and memsets; the processes' shards are merged into one run file once CMD ends. Ranks come\n"
      "from RANK/WORLD_SIZE (torchrun), Open MPI's, PMI's or Slurm's variables. Range names get their\n"
      "category, phase, step, micro-batch and layer from naming rules (--rules first, then the shipped\n"
      "sets for moescope, Megatron-Core and PyTorch). CMD's output and exit code pass through; if CMD\n"
      "fails, the run is kept and marked failed; if CMD is not found, exit 127 and no run file.\n"
      "  moescope-cli record --pp 2 -o run.moescope -- torchrun --nproc-per-node 2 train.py");
  cmd->add_option("-o,--output", o->output, "Run file to write")->capture_default_str();
  cmd->add_option("--pp", o->pp, "Pipeline stages (default 1)")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--tp", o->tp, "Tensor-parallel size (default 1)")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--dp", o->dp, "Data-parallel size (default 1)")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--order", o->order, "Order of the ranks, fastest-varying first, as Megatron's --order")
      ->capture_default_str();
  cmd->add_option("--schedule", o->schedule,
                  "Pipeline schedule the job runs: micro-batches are rebuilt from it")
      ->capture_default_str()
      ->check(CLI::IsMember({"gpipe", "1f1b"}));
  cmd->add_option("--rules", o->rules, "Naming rules file (TOML), tried before the shipped sets; repeatable");
  cmd->add_option("--steps", o->steps, "Keep only steps A to B (A:B, inclusive), by the step rule");
  cmd->add_flag("-f,--force", o->force, "Replace an existing run file (once the new one is whole)");
  cmd->add_flag("--no-nvtx", o->noNvtx, "Do not record NVTX ranges");
  cmd->add_flag("--no-kernels", o->noKernels, "Do not record kernels, copies, memsets and launch calls");
  cmd->add_option("--launch-calls", o->launchCalls,
                  "How the calls that launch GPU work are recorded: activity (CUPTI's records of them, the\n"
                  "cheapest), callbacks (a callback at each launch, costlier), off (none: kernels are not\n"
                  "tied to the ranges that launched them)")
      ->capture_default_str()
      ->check(CLI::IsMember({"activity", "callbacks", "off"}));
  cmd->add_option("command", o->command, "The command to record, after --")->required();
  cmd->callback([&action, o] { action = [o] { return runRecord(*o); }; });
}

}  // namespace moescope::app
