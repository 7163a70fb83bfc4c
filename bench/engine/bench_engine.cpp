// bench_engine: the CPU engine's throughput per layout for the sample configs, and the cost of tracing.
//
//   bench_engine [--steps N] [CONFIG.toml ...]      (default: samples/dense.toml ppmoe.toml dpmoe.toml)
//
// Each config runs N steps (default 20) in ONE run with tracing switched on and off on alternate steps
// (even steps traced, into a temporary run file), so both halves see the same machine load. Step 0 and
// step 1 are warm-up and left out. Reports tokens/s of the untraced steps and the ratio of the median
// traced step time over the median untraced one (goal <= 1.05). On a loaded machine that ratio is
// noisy, so it also measures one span's cost alone and reports spans per step x that cost as a share of
// the step: the overhead tracing adds on the ranks' own threads.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine/config.h"
#include "engine/data.h"
#include "engine/trainer.h"
#include "tracer/tracer.h"

namespace {

using namespace moescope;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The cost of one span on the engine's path: a ScopedSpan into a live tracer (clock reads, the
// recorder's chunk append, the background flush to SQLite running beside it).
double nsPerSpan() {
  const auto run_file = std::filesystem::temp_directory_path() / "bench_engine_spans.moescope";
  storage::RunInfo run;
  run.name = "spans";
  auto tracer = tracer::Tracer::open(run_file, run);
  tracer->addRank({});
  tracer::TrackRecorder* track = tracer->hostTrack(0, "rank 0 host");
  const int n = 1000000;
  const int64_t t0 = tracer::nowNs();
  for (int i = 0; i < n; ++i) {
    tracer::ScopedSpan span(
        track, "attention",
        {.category = storage::Category::ComputeAttention, .step = i / 1000, .layer = i % 8});
  }
  const int64_t t1 = tracer::nowNs();
  tracer->finish(storage::RunStatus::Complete, "");
  tracer.reset();
  std::filesystem::remove(run_file);
  return static_cast<double>(t1 - t0) / n;
}

double g_ns_per_span = 0;

int benchConfig(const std::string& path, int steps) {
  engine::Config c = engine::loadConfigFile(path);
  c.train.steps = steps;
  c.trace.enabled = true;
  engine::validate(c);
  const engine::TokenData data = engine::TokenData::load(c);
  auto backend = engine::makeCpuBackend();
  const auto run_file = std::filesystem::temp_directory_path() / "bench_engine.moescope";
  auto tracer = tracer::Tracer::open(run_file, engine::makeRunInfo(c, *backend, "bench"));
  engine::TrainOptions options;
  options.config = c;
  options.data = &data;
  options.backend = backend.get();
  options.tracer = tracer.get();
  options.trace_step = [](int step) { return step % 2 == 0; };
  const engine::TrainResult result = engine::train(options);
  tracer->finish(storage::RunStatus::Complete, "");
  const int64_t spans = tracer->spansWritten();
  tracer.reset();
  std::filesystem::remove(run_file);

  std::vector<double> on, off;
  for (const auto& s : result.steps) {
    if (s.step < 2) continue;
    (s.step % 2 == 0 ? on : off).push_back(s.step_ms);
  }
  const double off_ms = median(off), on_ms = median(on);
  const double tokens = static_cast<double>(c.tokensPerStep());
  const long long spans_per_step =
      static_cast<long long>(spans / std::max<size_t>(1, (result.steps.size() + 1) / 2));
  std::printf(
      "%-12s %-6s pp=%lld tp=%lld dp=%lld m=%lld %-5s %7.1f ms/step %7.0f tokens/s | traced %7.1f ms/step, "
      "ratio %.3f | %lld spans/step x %.0f ns = %.3f%% of a step\n",
      std::filesystem::path(path).filename().c_str(), c.layoutName().c_str(),
      static_cast<long long>(c.parallel.pp), static_cast<long long>(c.parallel.tp),
      static_cast<long long>(c.parallel.dp), static_cast<long long>(c.parallel.microbatches),
      std::string(storage::scheduleName(c.parallel.schedule)).c_str(), off_ms, tokens / (off_ms / 1e3), on_ms,
      on_ms / off_ms, spans_per_step, g_ns_per_span,
      100.0 * static_cast<double>(spans_per_step) * g_ns_per_span / 1e6 / off_ms);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 20;
  std::vector<std::string> configs;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else {
      configs.push_back(argv[i]);
    }
  }
  if (configs.empty()) {
    for (const char* name : {"dense", "ppmoe", "dpmoe"}) {
      configs.push_back(std::string(MOESCOPE_SOURCE_DIR) + "/samples/" + name + ".toml");
    }
  }
  std::printf("bench_engine: %d steps per config, %u hardware threads\n", steps,
              std::thread::hardware_concurrency());
  try {
    g_ns_per_span = nsPerSpan();
    std::printf("one span: %.1f ns (ScopedSpan into a live tracer, 1e6 spans)\n", g_ns_per_span);
    for (const auto& path : configs) benchConfig(path, steps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_engine: %s\n", e.what());
    return 1;
  }
  return 0;
}
