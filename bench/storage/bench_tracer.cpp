// The cost of a span on the engine's thread: ScopedSpan with a recorder (two clock reads and a slot
// in the recorder's chunk) and with a null recorder (tracing off). The flush thread writes behind it.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "tracer/tracer.h"

namespace {

using namespace moescope;

void BM_ScopedSpanRecorded(benchmark::State& state) {
  const auto path = std::filesystem::temp_directory_path() / "moescope-bench-tracer.moescope";
  auto tracer = tracer::Tracer::open(path, storage::RunInfo{});
  tracer::TrackRecorder* rec = tracer->hostTrack(0, "rank 0 host");
  int32_t i = 0;
  for (auto _ : state) {
    tracer::ScopedSpan s(rec, "attention",
                         {.category = storage::Category::ComputeAttention, .layer = i++ & 7});
  }
  state.SetItemsProcessed(state.iterations());
  tracer->finish(storage::RunStatus::Complete, "");
  state.counters["written"] = static_cast<double>(tracer->spansWritten());
  tracer.reset();
  std::filesystem::remove(path);
}

void BM_ScopedSpanOff(benchmark::State& state) {
  tracer::TrackRecorder* rec = nullptr;
  benchmark::DoNotOptimize(rec);
  for (auto _ : state) {
    tracer::ScopedSpan s(rec, "attention", {.category = storage::Category::ComputeAttention});
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_ScopedSpanRecorded)->Iterations(2'000'000);
BENCHMARK(BM_ScopedSpanOff);

BENCHMARK_MAIN();
