// Shards of a multi-process run: (1) ingest, the same spans written by one process into one file
// against two processes each writing half into its own shard at once (what `mpirun -np 2` does); (2)
// merging 4 shards of a run into one file, against loading the same spans from one file. Wall-clock
// time: the point of shards is to use both cores. Spans are generated before the clock starts.
//
//   bench_shards [--spans N] [--merge-spans N] [--reps R]     (defaults: 4M, 10M, 3)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "storage/shard_merge.h"
#include "storage/shard_read.h"
#include "storage/synthetic.h"

namespace {

namespace fs = std::filesystem;
using namespace moescope::storage;

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

SyntheticOptions options(int64_t spans) {
  SyntheticOptions o;
  o.stages = 4;
  o.tp = 2;
  o.dp = 2;
  o.microbatches = 8;
  o.spans = spans;
  return o;
}

// The trace's spans as records, per track, each with its track's id in the shard of `processes` that
// holds it (tracks are numbered from 0 in each shard, in the trace's order), so that writing them is
// all the clock sees.
std::vector<std::vector<SpanRecord>> records(const Trace& trace, int processes) {
  const auto ranks = static_cast<int32_t>(trace.ranks.size());
  std::vector<int32_t> nextInShard(static_cast<size_t>(processes), 0);
  std::vector<std::vector<SpanRecord>> perTrack(trace.spans.size());
  for (size_t t = 0; t < trace.spans.size(); ++t) {
    const int32_t shard = trace.tracks[t].rank * processes / ranks;
    const int32_t local = nextInShard[static_cast<size_t>(shard)]++;
    perTrack[t].reserve(trace.spans[t].size());
    for (size_t i = 0; i < trace.spans[t].size(); ++i) {
      const SpanView v = trace.spans[t].at(i, static_cast<int32_t>(t));
      perTrack[t].push_back({local, v.start, v.end, v.name, v.category, v.phase, v.step, v.microbatch,
                             v.layer, v.expert, v.bytes});
    }
  }
  return perTrack;
}

// Writes the ranks [first, first + count) of the trace into one run file, as the tracer's flush
// thread does (batches of 4096 per track, interleaved), as shard `index` of `shards`. The records'
// tracks are already the shard's (records()). Returns spans.
int64_t writePart(const fs::path& file, const Trace& trace,
                  const std::vector<std::vector<SpanRecord>>& perTrack, int32_t first, int32_t count,
                  int index, int shards) {
  auto w = RunWriter::create(file, trace.run);
  w->setMeta(kShardIndexKey, std::to_string(index));
  w->setMeta(kShardCountKey, std::to_string(shards));
  w->setMeta(kShardRunIdKey, "bench");
  for (const auto& s : trace.strings) w->intern(s);
  for (const auto& r : trace.ranks)
    if (r.rank >= first && r.rank < first + count) w->addRank(r);
  std::vector<bool> mine(trace.tracks.size(), false);
  for (size_t t = 0; t < trace.tracks.size(); ++t) {
    mine[t] = trace.tracks[t].rank >= first && trace.tracks[t].rank < first + count;
    if (mine[t]) w->addTrack(trace.tracks[t]);
  }
  int64_t n = 0;
  constexpr size_t kBatch = 4096;
  for (size_t at = 0;; at += kBatch) {
    bool any = false;
    for (size_t t = 0; t < perTrack.size(); ++t) {
      if (!mine[t] || at >= perTrack[t].size()) continue;
      any = true;
      const size_t k = std::min(kBatch, perTrack[t].size() - at);
      w->addSpans(std::span(perTrack[t]).subspan(at, k));
      n += static_cast<int64_t>(k);
    }
    if (!any) break;
  }
  w->setStatus(RunStatus::Complete, "", trace.run.end_ns);
  w->commit();
  return n;
}

// Writes the trace as `processes` shards, each by a process of its own, all at once. Returns seconds;
// cpuSeconds: the CPU time of the busiest process, which is the wall time on a machine with a free core
// per process (this shared 2-core VM is often loaded far beyond that).
double writeInProcesses(const fs::path& folder, const Trace& trace, int processes,
                        double* cpuSeconds = nullptr) {
  const auto perTrack = records(trace, processes);
  fs::remove_all(folder);
  fs::create_directories(folder);
  const int32_t ranks = static_cast<int32_t>(trace.ranks.size());
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<pid_t> children;
  for (int p = 0; p < processes; ++p) {
    const pid_t pid = fork();
    if (pid == 0) {
      try {
        writePart(folder / shardFileName(p), trace, perTrack, p * ranks / processes, ranks / processes, p,
                  processes);
        _exit(0);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_shards: %s\n", e.what());
        _exit(1);
      }
    }
    children.push_back(pid);
  }
  double slowestCpu = 0;
  for (pid_t c : children) {
    int status = 0;
    rusage usage{};
    wait4(c, &status, 0, &usage);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::exit(1);
    const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    slowestCpu = std::max(slowestCpu, cpu);
  }
  if (cpuSeconds) *cpuSeconds = slowestCpu;
  return seconds(t0);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t spans = 4'000'000, mergeSpans = 10'000'000;
  int reps = 3;
  const char* usage =
      "usage: bench_shards [--spans N] [--merge-spans N] [--reps R]   (defaults: 4000000, 10000000, 3)\n";
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    const long long v = i + 1 < argc ? std::atoll(argv[i + 1]) : 0;
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (v <= 0 || (a != "--spans" && a != "--merge-spans" && a != "--reps")) {
      std::fprintf(stderr, "bench_shards: bad argument '%s'\n%s", a.c_str(), usage);
      return 2;
    }
    if (a == "--spans") spans = v;
    if (a == "--merge-spans") mergeSpans = v;
    if (a == "--reps") reps = static_cast<int>(v);
  }
  const fs::path dir = fs::temp_directory_path() / "moescope-bench-shards";
  fs::create_directories(dir);
  {
    const Trace trace = syntheticTrace(options(spans));
    const auto n = static_cast<double>(trace.spanCount());
    std::vector<double> one, two, oneCpu, twoCpu;
    for (int r = 0; r < reps; ++r) {
      double cpu = 0;
      one.push_back(writeInProcesses(dir / "one", trace, 1, &cpu));
      oneCpu.push_back(cpu);
      two.push_back(writeInProcesses(dir / "two", trace, 2, &cpu));
      twoCpu.push_back(cpu);
      std::printf(
          "ingest rep %d: 1 process %.2f s wall, %.2f s CPU; 2 processes %.2f s wall, busiest %.2f s CPU\n",
          r, one.back(), oneCpu.back(), two.back(), twoCpu.back());
    }
    std::printf(
        "ingest of %.0f spans, median: 1 process %.2fM spans/s wall (%.2fM/s of CPU); 2 processes %.2fM "
        "spans/s wall together, %.2fM/s with a core each (busiest process's CPU time)\n",
        n, n / median(one) / 1e6, n / median(oneCpu) / 1e6, n / median(two) / 1e6, n / median(twoCpu) / 1e6);
  }
  {
    const Trace trace = syntheticTrace(options(mergeSpans));
    const auto n = static_cast<double>(trace.spanCount());
    writeInProcesses(dir / "four", trace, 4);
    const fs::path single = dir / "single.moescope";
    writePart(single, trace, records(trace, 1), 0, static_cast<int32_t>(trace.ranks.size()), 0, 1);
    std::vector<double> load, merge, loadMerged, joint;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      { const Trace t = RunReader::open(single)->load(); }
      load.push_back(seconds(t0));
      t0 = std::chrono::steady_clock::now();
      mergeShards(listShards(dir / "four"), dir / "merged.moescope");
      merge.push_back(seconds(t0));
      t0 = std::chrono::steady_clock::now();
      { const Trace t = loadShards(listShards(dir / "four")); }
      joint.push_back(seconds(t0));
      t0 = std::chrono::steady_clock::now();
      { const Trace t = RunReader::open(dir / "merged.moescope")->load(); }
      loadMerged.push_back(seconds(t0));
      std::printf(
          "merge rep %d: load one file %.2f s, merge 4 shards %.2f s, load the merged file %.2f s, read "
          "the 4 shards together %.2f s\n",
          r, load.back(), merge.back(), loadMerged.back(), joint.back());
      std::fflush(stdout);
    }
    std::printf(
        "%.0f spans, median: load %.2f s; merge %.2f s (%.2fx the load); read the 4 shards together "
        "%.2f s (%.2fx the load)\n",
        n, median(load), median(merge), median(merge) / median(load), median(joint),
        median(joint) / median(load));
  }
  fs::remove_all(dir);
  return 0;
}
