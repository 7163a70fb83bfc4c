#include "tracer/inject/session.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "storage/record_shard.h"
#include "storage/rules.h"
#include "storage/shard_meta.h"
#include "storage/storage_error.h"

namespace moescope::tracer::inject {
namespace {

Session* g_session = nullptr;
std::once_flag g_start;
std::atomic<bool> g_written{false};
std::atomic<bool> g_forked{false};
pid_t g_pid = 0;
int g_signalPipe[2] = {-1, -1};
struct sigaction g_previousTerm {};

// The shard's index: the launcher's rank where it gave one, else the first free one. Claimed by
// creating shard-<index>.claim exclusively, so two processes never write the same shard (a child that
// inherited its parent's RANK takes the next free index at or above the world size).
int32_t claimIndex(const std::filesystem::path& dir, const LaunchRank& launch) {
  auto claim = [&](int32_t i) {
    const std::string path = (dir / ("shard-" + std::to_string(i) + ".claim")).string();
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    ::close(fd);
    return true;
  };
  if (launch.rank && claim(*launch.rank)) return *launch.rank;
  for (int32_t i = launch.rank ? launch.world.value_or(*launch.rank + 1) : 0;; ++i) {
    if (claim(i)) return i;
    if (i > (1 << 20)) return -1;
  }
}

void writeShard(storage::RunStatus status, const std::string& error) {
  if (g_written.exchange(true) || g_forked.load() || ::getpid() != g_pid) return;
  Session& s = *g_session;
  bool gpuRecorded = false;
  uint64_t dropped = 0;
  std::string gpuNote = finishGpuRecording(s, gpuRecorded, dropped);
  storage::RecordStream stream = s.recorder.take();
  stream.gpu_recorded = gpuRecorded;
  stream.gpu_note = gpuNote;
  stream.gpu_dropped = dropped;
  // A process that recorded nothing (torchrun's launcher: no rank, no CUDA, no NVTX) writes no shard; its
  // rankless shard would stand beside the workers' and the run could not be merged.
  if (stream.events.empty() && stream.calls.empty() && stream.gpu.empty()) return;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  stream.host = host;
  try {
    const std::filesystem::path dir = s.settings.dir;
    const LaunchRank launch = launchRank([](const char* n) { return std::getenv(n); });
    const int32_t index = claimIndex(dir, launch);
    if (index < 0) throw storage::StorageError(dir.string() + ": no free shard index");
    storage::ShardWriteOptions o;
    o.output = dir / storage::shardFileName(index);
    std::vector<std::filesystem::path> ruleFiles(s.settings.rules.begin(), s.settings.rules.end());
    const storage::RuleSet rules = storage::rulesFor(ruleFiles);
    o.rules = &rules;
    std::string problem;
    const auto order = storage::parseRankOrder(s.settings.order, problem);
    if (!order) throw storage::StorageError(problem);
    o.layout = {s.settings.pp, s.settings.tp, s.settings.dp, *order};
    o.schedule = storage::scheduleFromName(s.settings.schedule).value_or(storage::Schedule::OneFOneB);
    o.steps = s.settings.steps;
    o.shard.index = index;
    o.shard.count = launch.world.value_or(0);
    o.shard.run_id = s.settings.run_id;
    o.shard.rank = launch.rank.value_or(index);
    o.shard.command = s.settings.command;
    o.status = status;
    o.error = error;
    storage::writeRecordedShard(stream, o);
  } catch (const std::exception& e) {
    say(std::string("the shard of process ") + std::to_string(::getpid()) + " was not written: " + e.what());
  }
}

void atExit() {
  writeShard(storage::RunStatus::Complete, "");
}

void onTerm(int) {
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(g_signalPipe[1], &byte, 1);  // async-signal-safe
}

// SIGTERM: the shard is written here, outside the signal handler (SQLite is not async-signal-safe),
// then the signal is delivered again to what handled it before (by default: the process ends).
void termWatcher() {
  char byte = 0;
  while (::read(g_signalPipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
  writeShard(storage::RunStatus::Failed, "the process was terminated (SIGTERM)");
  ::sigaction(SIGTERM, &g_previousTerm, nullptr);
  ::kill(::getpid(), SIGTERM);
}

void inChild() {
  g_forked = true;
}

void start() {
  std::optional<RecordSettings> settings;
  try {
    settings = readRecordSettings([](const char* n) { return std::getenv(n); });
  } catch (const std::exception& e) {
    say(e.what());
    return;
  }
  if (!settings) return;
  g_session = new Session{*settings, {}};  // lives until the process ends
  g_pid = ::getpid();
  ::pthread_atfork(nullptr, nullptr, inChild);
  std::atexit(atExit);
  if (::pipe2(g_signalPipe, O_CLOEXEC) == 0) {
    struct sigaction action {};
    action.sa_handler = onTerm;
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGTERM, &action, &g_previousTerm) == 0) std::thread(termWatcher).detach();
  }
}

}  // namespace

void say(const std::string& text) {
  std::fprintf(stderr, "moescope: %s\n", text.c_str());
}

Session* session() {
  std::call_once(g_start, start);
  return g_forked.load(std::memory_order_relaxed) ? nullptr : g_session;
}

}  // namespace moescope::tracer::inject
