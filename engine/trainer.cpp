#include "engine/trainer.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "base/run_tasks.h"
#include "engine/engine_error.h"
#include "engine/layout.h"
#include "engine/parameters.h"
#include "engine/schedule.h"
#include "tracer/tracer.h"

namespace moescope::engine {

ModelWeights emptyWeights(const ModelConfig& model) {
  ModelWeights weights;
  for (const auto& spec : modelParameters(model)) {
    weights.push_back({spec.name, spec.shape, std::vector<float>(static_cast<size_t>(spec.numel()), 0.0f)});
  }
  return weights;
}

ModelWeights initialWeights(const ModelConfig& model, uint64_t seed) {
  ModelWeights weights;
  for (const auto& spec : modelParameters(model))
    weights.push_back({spec.name, spec.shape, initialValues(spec, seed)});
  return weights;
}

storage::RunInfo makeRunInfo(const Config& config, const Backend& backend, const std::string& name) {
  storage::RunInfo run;
  run.name = name;
  run.config = toToml(config);
  run.layout = config.layoutName();
  run.backend = backend.name();
  run.devices = backend.devices(config);
  run.pp = static_cast<int32_t>(config.parallel.pp);
  run.tp = static_cast<int32_t>(config.parallel.tp);
  run.dp = static_cast<int32_t>(config.parallel.dp);
  run.microbatches = static_cast<int32_t>(config.parallel.microbatches);
  run.schedule = config.parallel.schedule;
  run.virtual_stages = static_cast<int32_t>(config.parallel.virtual_stages);
  run.tokens_per_step = config.tokensPerStep();
  run.start_ns = tracer::nowNs();
  return run;
}

TrainResult train(const TrainOptions& options) {
  const Config& config = options.config;
  std::unique_ptr<Backend> owned_backend;
  Backend* backend = options.backend;
  if (!backend) {
    owned_backend = makeCpuBackend();
    backend = owned_backend.get();
  }
  const Layout layout(config);
  const int world_size = layout.worldSize();
  std::unique_ptr<CommWorld> owned_world;
  CommWorld* world = options.world;
  if (!world) {
    owned_world = backend->makeWorld(world_size);
    world = owned_world.get();
  }
  const int first_rank = options.first_rank;
  const int local_ranks = options.local_ranks > 0 ? options.local_ranks : world_size;
  if (first_rank < 0 || first_rank + local_ranks > world_size)
    throw std::logic_error("train: ranks " + std::to_string(first_rank) + ".." +
                           std::to_string(first_rank + local_ranks - 1) + " are not all in the world");
  // The run file gets the ranks and step metrics whenever there is one; spans only when tracing is on.
  tracer::Tracer* tracer = options.tracer;

  std::vector<tracer::TrackRecorder*> recorders(static_cast<size_t>(world_size), nullptr);
  if (tracer) {
    for (int r = first_rank; r < first_rank + local_ranks; ++r) {
      const RankCoord c = layout.coord(r);
      storage::RankInfo info;
      info.rank = r;
      info.stage = c.stage;
      info.tp_rank = c.tp;
      info.dp_rank = c.dp;
      info.device = backend->device(c);
      info.host = options.host;
      tracer->addRank(info);
    }
    for (int r = first_rank; r < first_rank + local_ranks; ++r) {
      tracer::TrackRecorder* track = tracer->hostTrack(r, "rank " + std::to_string(r) + " host");
      if (config.trace.enabled) recorders[static_cast<size_t>(r)] = track;
    }
  }

  TrainResult result;
  ModelWeights gathered;
  if (options.gather_weights) {
    gathered = emptyWeights(config.model);
    // Over several processes each holds some ranks' shards: NaN marks what this process did not write,
    // for the gather that fills it from the others (MpiRuntime::gatherWeights).
    if (local_ranks < world_size)
      for (NamedTensor& t : gathered)
        std::fill(t.data.begin(), t.data.end(), std::numeric_limits<float>::quiet_NaN());
  }
  std::mutex mutex;
  std::atomic<bool> cancelled{false};

  auto rankMain = [&](int rank) {
    const RankCoord coord = layout.coord(rank);
    try {
      auto world_comm = world->communicator(rank, [&] {
        std::vector<int> all(static_cast<size_t>(world_size));
        for (int r = 0; r < world_size; ++r) all[static_cast<size_t>(r)] = r;
        return all;
      }());
      auto tp = world->communicator(rank, layout.tpGroup(coord));
      auto dp = world->communicator(rank, layout.dpGroup(coord));
      auto pp = world->communicator(rank, layout.ppGroup(coord));
      tracer::TrackRecorder* recorder = recorders[static_cast<size_t>(rank)];
      RankSetup setup;
      setup.config = &config;
      setup.layout = &layout;
      setup.coord = coord;
      setup.data = options.data;
      setup.world = world_comm.get();
      setup.tp = tp.get();
      setup.dp = dp.get();
      setup.pp = pp.get();
      setup.recorder = recorder;
      auto executor = backend->makeExecutor(setup);
      if (options.init) {
        executor->loadWeights(*options.init);
      } else {
        executor->initialize(static_cast<uint64_t>(config.train.seed));
      }
      const auto schedule = stageSchedule(pipelineShape(config), coord.stage);
      for (Communicator* c : {setup.world, setup.tp, setup.dp, setup.pp}) c->setRecorder(recorder);
      tracer::TrackRecorder* current = recorder;
      // The routing (tp rank 0 of each stage and replica routes for its group): every routing group and
      // MoE layer into the run file's routing tables, and counters of kept tokens per expert and
      // dropped assignments per step, summed over the stage's MoE layers.
      std::vector<int32_t> expert_tracks;
      int32_t dropped_track = -1;
      auto recordRouting = [&](const RoutingStats& stats, int64_t time) {
        if (stats.kept.empty()) return;
        if (expert_tracks.empty()) {
          for (size_t e = 0; e < stats.kept.size(); ++e) {
            expert_tracks.push_back(tracer->counterTrack(rank, "tokens/expert " + std::to_string(e)));
          }
          if (config.model.capacity_factor > 0)
            dropped_track = tracer->counterTrack(rank, "dropped assignments");
        }
        for (size_t e = 0; e < stats.kept.size(); ++e) {
          tracer->counter(expert_tracks[e], time, static_cast<double>(stats.kept[e]));
        }
        if (dropped_track >= 0) tracer->counter(dropped_track, time, static_cast<double>(stats.dropped));
        tracer->moeRouting(stats.groups);
      };
      // Every rank's peaks, a counter track each, made at its first sample (none for what the backend
      // does not count): saved activations at their worst moment of the step (what its schedule costs),
      // and the device memory held (the device of each rank, where the step metric has the largest).
      int32_t activation_track = -1, device_track = -1;
      auto recordPeak = [&](int32_t& track, std::string_view counter, int64_t bytes, int64_t time) {
        if (bytes <= 0) return;
        if (track < 0) track = tracer->counterTrack(rank, std::string(counter));
        tracer->counter(track, time, static_cast<double>(bytes));
      };
      for (int step = 0; step < config.train.steps; ++step) {
        // Tracing may be switched per step (the tracing-overhead benchmark); every rank switches alike.
        tracer::TrackRecorder* wanted = options.trace_step && !options.trace_step(step) ? nullptr : recorder;
        if (wanted != current) {
          current = wanted;
          executor->setRecorder(wanted);
          for (Communicator* c : {setup.world, setup.tp, setup.dp, setup.pp}) c->setRecorder(wanted);
        }
        const int64_t t0 = tracer::nowNs();
        executor->beginStep(step);
        for (const auto& op : schedule) {
          if (options.cancel && options.cancel->load()) throw Cancelled("cancelled");
          if (options.before_pass) options.before_pass(rank);
          executor->run(op);
        }
        const StepLosses losses = executor->endStep();
        const int64_t t1 = tracer::nowNs();
        if (tracer && coord.tp == 0) recordRouting(executor->routingStats(), t1);
        if (tracer) {
          recordPeak(activation_track, storage::kPeakActivationCounter, executor->peakActivationBytes(), t1);
          recordPeak(device_track, storage::kPeakDeviceMemoryCounter, backend->rankPeakMemoryBytes(coord),
                     t1);
        }
        if (rank == 0) {
          StepReport report;
          report.step = step;
          report.losses = losses;
          report.tokens = config.tokensPerStep();
          report.start_ns = t0;
          report.end_ns = t1;
          report.step_ms = static_cast<double>(t1 - t0) / 1e6;
          report.tokens_per_s =
              report.step_ms > 0 ? static_cast<double>(report.tokens) / (report.step_ms / 1e3) : 0;
          report.peak_memory_bytes = backend->peakMemoryBytes();
          if (tracer) {
            storage::StepMetric metric;
            metric.step = step;
            metric.loss = losses.loss;
            metric.ce_loss = losses.ce;
            metric.aux_loss = losses.aux;
            metric.tokens = report.tokens;
            metric.step_ms = report.step_ms;
            metric.tokens_per_s = report.tokens_per_s;
            metric.start_ns = t0;
            metric.end_ns = t1;
            metric.peak_memory_bytes = report.peak_memory_bytes;
            tracer->stepMetric(metric);
          }
          result.steps.push_back(report);
          if (options.on_step) options.on_step(report);
        }
      }
      if (recorder) recorder->flush();
      if (options.gather_weights) {
        std::lock_guard lock(mutex);
        executor->storeWeights(gathered);
      }
    } catch (const Cancelled&) {
      throw;
    } catch (const InputError&) {
      throw;
    } catch (const std::exception& e) {
      // Over several processes the error reaches one process's output among many: name the rank.
      if (local_ranks < world_size)
        throw std::runtime_error("rank " + std::to_string(rank) + ": " + e.what());
      throw;
    }
  };
  auto guardedRankMain = [&](int rank) {
    try {
      rankMain(rank);
    } catch (const Cancelled&) {
      // Cancelled by the user, or stopped because another rank failed: that rank's error is the one
      // the caller gets.
      cancelled.store(true);
      world->abort("cancelled");
    }
  };

  // A rank's error stops the others and reaches the caller.
  runTasks(
      local_ranks, [&](int i) { guardedRankMain(first_rank + i); }, [&] { world->abort("a rank failed"); });
  if (cancelled.load()) throw Cancelled("cancelled");
  result.weights = std::move(gathered);
  return result;
}

}  // namespace moescope::engine
