// A synthetic run shaped like a pipeline-parallel MoE training run: p stages x tp x dp ranks, one host
// track each; per step a GPipe or 1F1B schedule of m micro-batches, forward and backward of each
// micro-batch made of attention, tensor-parallel all-reduce, router, PPMoE slicing and expert spans
// per layer, pipeline send/recv between stages, waits where a stage idles for its peer, then a
// gradient all-reduce and the optimizer. Durations jitter deterministically (seeded). For tests,
// benchmarks and the sample run file; not a model of any real machine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>

#include "storage/trace.h"

namespace moescope::storage {

struct SyntheticOptions {
  int32_t stages = 4;
  int32_t tp = 2;
  int32_t dp = 1;
  int32_t microbatches = 8;
  int32_t layersPerStage = 2;
  int32_t experts = 8;
  Schedule schedule = Schedule::OneFOneB;
  int64_t spans = 10000;  // at least this many spans: whole steps, the last one crossing it
  int64_t tokensPerMicrobatch = 2048;
  uint64_t seed = 1;
  int64_t startNs = 1'000'000'000;
  bool operator==(const SyntheticOptions&) const = default;
};

// What a generator hands out: the run, ranks and tracks first, then spans in batches (each batch one
// rank's spans of one step, by start) and one step metric per step.
struct SyntheticSink {
  std::function<void(const RunInfo&, std::span<const RankInfo>, std::span<const TrackInfo>,
                     std::span<const std::string_view> names)>
      begin;
  std::function<void(std::span<const SpanRecord>)> spans;
  std::function<void(const StepMetric&)> step;
};

// Generates the run; span names are indices into the `names` given to begin. Returns the span count.
int64_t generateSynthetic(const SyntheticOptions& options, const SyntheticSink& sink);

// Writes the synthetic run to a run file (status complete). Returns the span count.
int64_t writeSyntheticRun(const std::filesystem::path& path, const SyntheticOptions& options);

// The synthetic run in memory, as RunReader::load would return it.
Trace syntheticTrace(const SyntheticOptions& options);

}  // namespace moescope::storage
