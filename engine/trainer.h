// Runs training: one thread per rank, each with its communicators and its backend's StageExecutor,
// walking the pipeline schedule over the step's micro-batches; reports every step and records the run's
// ranks and tracks in the tracer. Backend-independent.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/data.h"
#include "storage/trace_model.h"

namespace moescope::tracer {
class Tracer;
}

namespace moescope::engine {

struct StepReport {
  int step = 0;
  StepLosses losses;
  int64_t tokens = 0;
  double step_ms = 0;
  double tokens_per_s = 0;
  int64_t start_ns = 0, end_ns = 0;
  int64_t peak_memory_bytes = 0;  // Backend::peakMemoryBytes after the step (0: not counted)
};

struct TrainOptions {
  Config config;                                   // validated
  const TokenData* data = nullptr;                 // required
  const ModelWeights* init = nullptr;              // nullptr: initialise from config.train.seed
  Backend* backend = nullptr;                      // nullptr: the CPU backend
  tracer::Tracer* tracer = nullptr;                // nullptr: no run file; spans only if config.trace.enabled
  const std::atomic<bool>* cancel = nullptr;       // checked between micro-batches
  std::function<void(const StepReport&)> on_step;  // called after each step, from rank 0's thread
  bool gather_weights = false;                     // return the full model after the last step
  // Tracing can be switched per step (benchmarks): returns whether step s is traced. Default: all.
  std::function<bool(int)> trace_step;
  // A run spread over processes (engine/mpi_communicator.h): this process runs the global ranks
  // [first_rank, first_rank + local_ranks) over `world`; the tracer gets only those ranks. Step
  // reports (on_step, TrainResult::steps) come from the process that holds rank 0. Defaults: every
  // rank here, over the backend's own world.
  CommWorld* world = nullptr;
  int first_rank = 0;
  int local_ranks = 0;             // 0: all
  std::string host = "localhost";  // RankInfo::host of this process's ranks
  // Called by each rank before each pass (tests slow one rank down with it); empty: nothing.
  std::function<void(int rank)> before_pass;
};

struct TrainResult {
  std::vector<StepReport> steps;
  ModelWeights weights;  // gather_weights
};

// Throws Cancelled when options.cancel was set, or the first rank's error when a rank failed.
TrainResult train(const TrainOptions& options);

// The full model initialised from the seed, as every layout starts it.
ModelWeights initialWeights(const ModelConfig& model, uint64_t seed);
// Zero tensors of the model's shapes, in modelParameters order.
ModelWeights emptyWeights(const ModelConfig& model);

// The run row for the run file: layout, backend, parallel sizes, schedule, tokens per step, config TOML.
storage::RunInfo makeRunInfo(const Config& config, const Backend& backend, const std::string& name);

}  // namespace moescope::engine
