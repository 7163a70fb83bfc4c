// The seam between the backend-independent trainer (data order, schedules, threads, tracing, metrics)
// and a backend (CPU reference, CUDA): a backend makes the communicators and one StageExecutor per
// rank (the stage pass, stage_pass.h, over the backend's operations), which holds that rank's shard of
// the model and runs its part of a step.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/communicator.h"
#include "engine/config.h"
#include "engine/data.h"
#include "engine/layout.h"
#include "engine/routing_stats.h"
#include "engine/schedule.h"
#include "tracer/span.h"

namespace moescope::engine {

// The losses of one step (before its update), identical on every rank.
struct StepLosses {
  double loss = 0, ce = 0, aux = 0;
  double grad_norm = 0;  // global L2 norm of the gradient before clipping
  bool operator==(const StepLosses&) const = default;
};

// Every rank's handles; the trainer owns them and keeps them alive while the executor runs.
struct RankSetup {
  const Config* config = nullptr;
  const Layout* layout = nullptr;
  RankCoord coord;
  const TokenData* data = nullptr;
  Communicator* world = nullptr;              // all ranks
  Communicator* tp = nullptr;                 // same stage and replica
  Communicator* dp = nullptr;                 // same stage and tp rank
  Communicator* pp = nullptr;                 // same replica and tp rank, member index = stage
  tracer::TrackRecorder* recorder = nullptr;  // nullptr: tracing off
};

// One rank's part of the model and of each step. The trainer calls, per step: beginStep, run for each
// pass of the stage's schedule (engine/schedule.h), endStep.
class StageExecutor {
 public:
  virtual ~StageExecutor() = default;
  // Initialises this rank's shards from the seed (MODEL.md: the same full model whatever the layout).
  virtual void initialize(uint64_t seed) = 0;
  // Takes this rank's shards from the full model.
  virtual void loadWeights(const ModelWeights& full) = 0;
  // Writes this rank's shards into the full model (tensors already sized, in modelParameters order).
  virtual void storeWeights(ModelWeights& full) const = 0;
  // Where spans go from now on; nullptr switches tracing off.
  virtual void setRecorder(tracer::TrackRecorder* recorder) = 0;
  virtual void beginStep(int step) = 0;
  // One pass of a micro-batch through one of this stage's chunks: forward, backward, or a split
  // backward's input-gradient or weight-gradient half; receives from / sends to the neighbouring stages.
  virtual void run(const PipelineOp& pass) = 0;
  // Gradient all-reduce, loss reduction, clipping and the optimizer update.
  virtual StepLosses endStep() = 0;
  // The routing of the last step (for the run file's tokens-per-expert counters); optional.
  virtual RoutingStats routingStats() const { return {}; }
  // The bytes of saved activations this rank held at the worst moment of the last step (from each
  // micro-batch's forward through a chunk to its last backward pass there); optional.
  virtual int64_t peakActivationBytes() const { return 0; }
};

// A world of communicating ranks, made by the backend.
class CommWorld {
 public:
  virtual ~CommWorld() = default;
  // The handle of global rank `rank` in the group of the given global ranks, in group order.
  virtual std::unique_ptr<Communicator> communicator(int rank, const std::vector<int>& group) = 0;
  // Every blocked or later communication of every rank throws Cancelled.
  virtual void abort(const std::string& reason) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;                                    // "cpu", "cuda"
  virtual std::string devices(const Config& config) const = 0;             // for the run file
  virtual int32_t device(const RankCoord& /*coord*/) const { return -1; }  // GPU ordinal, -1 none
  // Throws InputError when this backend cannot run the config here (too few devices, too little
  // memory); called before any file is written.
  virtual void check(const Config& /*config*/) const {}
  virtual std::unique_ptr<CommWorld> makeWorld(int size) = 0;
  virtual std::unique_ptr<StageExecutor> makeExecutor(const RankSetup& setup) = 0;
  // The most device memory one of the run's ranks held at once since its world was made (bytes, the
  // backend's own count of its allocations); 0 where the backend counts none (the CPU).
  virtual int64_t peakMemoryBytes() const { return 0; }
  // The same for one of this process's ranks (its device); 0 where the backend counts none.
  virtual int64_t rankPeakMemoryBytes(const RankCoord& /*coord*/) const { return 0; }
};

// The CPU reference backend (float).
std::unique_ptr<Backend> makeCpuBackend();

}  // namespace moescope::engine
