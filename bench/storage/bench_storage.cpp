// Write, load and export benchmarks on synthetic pipeline runs. Sizes default to the goals (10M spans
// written and loaded, 1M exported); MOESCOPE_BENCH_SPANS scales them down for a quick look. "Time" is
// wall-clock, "CPU" the whole process's CPU time (both reader threads of a parallel load), which says
// more on a busy shared machine.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "storage/export_chrome.h"
#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "storage/synthetic.h"

namespace {

using namespace moescope::storage;

int64_t scaled(int64_t spans) {
  const char* env = std::getenv("MOESCOPE_BENCH_SPANS");
  return env ? std::max<int64_t>(1000, spans * std::atoll(env) / 10'000'000) : spans;
}

std::filesystem::path scratch(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("moescope-bench-" + name + ".moescope");
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

// Spans are generated in memory first, so the time is the writer's alone.
void BM_WriteSpans(benchmark::State& state) {
  const Trace trace = syntheticTrace(options(scaled(10'000'000)));
  std::vector<std::vector<SpanRecord>> perTrack(trace.spans.size());
  for (size_t t = 0; t < trace.spans.size(); ++t) {
    for (size_t i = 0; i < trace.spans[t].size(); ++i) {
      const SpanView v = trace.spans[t].at(i, static_cast<int32_t>(t));
      perTrack[t].push_back({v.track, v.start, v.end, v.name, v.category, v.phase, v.step, v.microbatch,
                             v.layer, v.expert, v.bytes});
    }
  }
  const auto path = scratch("write");
  int64_t spans = 0;
  for (auto _ : state) {
    auto writer = RunWriter::create(path, trace.run);
    for (const auto& r : trace.ranks) writer->addRank(r);
    for (const auto& t : trace.tracks) writer->addTrack(t);
    for (const auto& s : trace.strings) writer->intern(s);
    // In batches of 4096 per track, interleaved, as the tracer's flush thread writes them.
    constexpr size_t kBatch = 4096;
    for (size_t first = 0;; first += kBatch) {
      bool any = false;
      for (const auto& spansOfTrack : perTrack) {
        if (first >= spansOfTrack.size()) continue;
        any = true;
        const size_t n = std::min(kBatch, spansOfTrack.size() - first);
        writer->addSpans(std::span(spansOfTrack).subspan(first, n));
      }
      if (!any) break;
    }
    writer->setStatus(RunStatus::Complete, "", trace.run.end_ns);
    writer->commit();
    writer.reset();
    spans = static_cast<int64_t>(trace.spanCount());
  }
  state.counters["spans"] = static_cast<double>(spans);
  state.counters["spans_per_s"] =
      benchmark::Counter(static_cast<double>(spans), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["file_bytes_per_span"] =
      static_cast<double>(std::filesystem::file_size(path)) / static_cast<double>(spans);
  std::filesystem::remove(path);
}

void BM_LoadSpans(benchmark::State& state) {
  const auto path = scratch("load");
  const int64_t spans = writeSyntheticRun(path, options(scaled(10'000'000)));
  double bytesPerSpan = 0;
  for (auto _ : state) {
    auto reader = RunReader::open(path);
    Trace trace = reader->load();
    bytesPerSpan = static_cast<double>(trace.residentBytes()) / static_cast<double>(trace.spanCount());
    benchmark::DoNotOptimize(trace);
  }
  state.counters["spans"] = static_cast<double>(spans);
  state.counters["spans_per_s"] =
      benchmark::Counter(static_cast<double>(spans), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["resident_bytes_per_span"] = bytesPerSpan;
  std::filesystem::remove(path);
}

// The export writes a real file: formatting and the file system together, as a user sees it.
void BM_ExportChrome(benchmark::State& state) {
  const Trace trace = syntheticTrace(options(scaled(1'000'000)));
  const auto path = scratch("export").replace_extension(".json");
  int64_t events = 0;
  for (auto _ : state) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    events = exportChromeTrace(trace, out);
    out.close();
  }
  const auto spans = static_cast<double>(trace.spanCount());
  state.counters["spans"] = spans;
  state.counters["events"] = static_cast<double>(events);
  state.counters["spans_per_s"] = benchmark::Counter(spans, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["json_bytes_per_span"] = static_cast<double>(std::filesystem::file_size(path)) / spans;
  std::filesystem::remove(path);
}

}  // namespace

BENCHMARK(BM_ExportChrome)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_WriteSpans)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_LoadSpans)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime()->MeasureProcessCPUTime();

BENCHMARK_MAIN();
