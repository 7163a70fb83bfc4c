// moescope-cli train: MODEL.md's train command. Everything given is checked (config, layout, data,
// --init checkpoint, output folders) before any file is created; bad input is exit 2 with one line.
// A run that fails is exit 1 with its run file marked failed; Ctrl-C cancels between micro-batches
// (exit 130, run file marked cancelled). Checkpoint and metrics are written to temporary names and
// renamed when complete. --dry-run does every check of a run, prints "ok" and the schedule's passes per
// stage, and writes nothing.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/cli_commands.h"
#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/cuda_kernel_options.h"
#include "engine/data.h"
#include "engine/engine_error.h"
#include "engine/mpi_clock.h"
#include "engine/mpi_communicator.h"
#include "engine/mpi_launch.h"
#include "engine/mpi_runtime.h"
#include "engine/schedule.h"
#include "engine/trainer.h"
#include "storage/analysis_bubbles.h"
#include "storage/shard_merge.h"
#include "storage/shard_meta.h"
#include "tracer/gpu_trace_options.h"
#include "tracer/tracer.h"
#ifdef MOESCOPE_HAVE_CUDA_BACKEND
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/kernel_choice.h"
#endif
#ifdef MOESCOPE_HAVE_GPU_TRACER
#include "tracer/gpu/gpu_tracer.h"
#endif

namespace moescope::app {
namespace {

namespace fs = std::filesystem;
using engine::InputError;

std::atomic<bool> g_cancel{false};
// Set by SIGTERM in a multi-process run: the launcher ends the other processes this way when one of
// them died; blocked communication stops (MpiWorld polls it) and the shard is marked failed.
std::atomic<bool> g_terminate{false};
extern "C" void onTerminate(int) {
  g_terminate.store(true);
}

// The first Ctrl-C asks the ranks to stop between micro-batches; a second one ends the process at once.
extern "C" void onInterrupt(int) {
  if (g_cancel.exchange(true)) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

struct TrainArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string backend;  // "": cuda where a GPU is present, else cpu
  std::optional<int64_t> steps;
  std::optional<std::string> data, init, save, metrics, out;
  std::optional<int> ranks_per_process;
  bool dry_run = false;
};

// The folder a new file would go in must exist (checked before anything is written).
void checkWritable(const std::string& option, const std::string& path) {
  const fs::path p(path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(option + ": folder '" + dir.string() + "' does not exist");
  if (fs::is_directory(p, ec)) throw InputError(option + ": '" + path + "' is a folder");
}

std::string formatDuration(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

// --dry-run's plan: the schedule, its bubble share with stages of equal cost, and each stage's passes
// in order (F forward, B backward, W weight gradients; micro-batch, then chunk where a stage has several).
std::string schedulePlan(const engine::Config& config) {
  const engine::PipelineShape s = engine::pipelineShape(config);
  char head[200];
  std::snprintf(
      head, sizeof head,
      "schedule %s: pp %d, %d micro-batches, %d virtual stages; theoretical bubble %.1f%%\n",
      std::string(storage::scheduleName(s.schedule)).c_str(), s.stages, s.microbatches, s.virtual_stages,
      100 * storage::theoreticalBubbleShare(s.schedule, s.stages, s.microbatches, s.virtual_stages));
  return head + engine::formatSchedule(s);
}

// The test-only switches of a multi-process run (tests/app/cli_train_mpi_test.cpp): a clock skew for
// this process, a rank slowed before each pass, a rank that fails. Read strictly: a value they do not
// take is bad input.
struct TestSwitches {
  int64_t clock_skew_ns = 0;
  int slow_rank = -1, slow_ms = 0;
  int fail_rank = -1;
};

int64_t parseSwitch(const char* name, const std::string& text, int64_t lo, int64_t hi) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi)
    throw InputError(std::string(name) + " is '" + text + "', not a number from " + std::to_string(lo) +
                     " to " + std::to_string(hi));
  return v;
}

TestSwitches readTestSwitches() {
  TestSwitches t;
  if (const char* v = std::getenv("MOESCOPE_TEST_CLOCK_SKEW_NS"))
    t.clock_skew_ns = parseSwitch("MOESCOPE_TEST_CLOCK_SKEW_NS", v, -3'600'000'000'000, 3'600'000'000'000);
  if (const char* v = std::getenv("MOESCOPE_TEST_SLOW_RANK")) {
    const std::string text = v;
    const auto colon = text.find(':');
    if (colon == std::string::npos)
      throw InputError("MOESCOPE_TEST_SLOW_RANK is '" + text + "', not RANK:MS");
    t.slow_rank =
        static_cast<int>(parseSwitch("MOESCOPE_TEST_SLOW_RANK's rank", text.substr(0, colon), 0, 1 << 20));
    t.slow_ms =
        static_cast<int>(parseSwitch("MOESCOPE_TEST_SLOW_RANK's delay", text.substr(colon + 1), 0, 60'000));
  }
  if (const char* v = std::getenv("MOESCOPE_TEST_FAIL_RANK"))
    t.fail_rank = static_cast<int>(parseSwitch("MOESCOPE_TEST_FAIL_RANK", v, 0, 1 << 20));
  return t;
}

// The checks a multi-process run adds, on every process alike: the launcher's processes times the
// ranks per process make the layout's world, and every process runs the same config on the same
// backend. Returns the problem, or "".
std::string checkProcesses(const engine::MpiRuntime& mpi, const engine::Config& config,
                           const std::string& backend, int perProcess) {
  const int64_t world = config.worldSize();
  if (perProcess < 1) return "--ranks-per-process must be at least 1, got " + std::to_string(perProcess);
  if (int64_t{mpi.processes()} * perProcess != world) {
    return "world size mismatch: the launcher started " + std::to_string(mpi.processes()) + " processes x " +
           std::to_string(perProcess) +
           " ranks each = " + std::to_string(int64_t{mpi.processes()} * perProcess) +
           " ranks, the layout needs pp x tp x dp = " + std::to_string(config.parallel.pp) + " x " +
           std::to_string(config.parallel.tp) + " x " + std::to_string(config.parallel.dp) + " = " +
           std::to_string(world) + " (set --ranks-per-process or the process count)";
  }
  if (backend == "cuda" && mpi.processes() > 1)
    return "--backend cuda over several processes is not supported yet: run one process (mpirun -np 1 "
           "--ranks-per-process N) or the CPU backend";
  const std::string mine = engine::toToml(config) + "\nbackend = " + backend + "\n";
  const std::vector<std::string> all = mpi.allGather(mine);
  for (size_t p = 1; p < all.size(); ++p) {
    if (all[p] == all[0]) continue;
    std::istringstream a(all[0]), b(all[p]);
    std::string la, lb;
    while (std::getline(a, la) && std::getline(b, lb) && la == lb) {
    }
    return "process " + std::to_string(p) + "'s config differs from process 0's ('" + lb + "' against '" +
           la + "'): every process must run the same config";
  }
  return "";
}

// The first problem any process found (named with its process when not 0), on every process.
std::string firstProblem(const engine::MpiRuntime& mpi, const std::string& mine) {
  const std::vector<std::string> all = mpi.allGather(mine);
  for (size_t p = 0; p < all.size(); ++p) {
    if (all[p].empty()) continue;
    return p == 0 ? all[p] : "process " + std::to_string(p) + ": " + all[p];
  }
  return "";
}

// The shards folder of a run file, emptied of an earlier run's shards by process 0.
std::string prepareShards(const engine::MpiRuntime& mpi, const std::string& out) {
  const fs::path folder = storage::shardsFolderName(out);
  if (mpi.process() == 0) {
    fs::create_directories(folder);
    for (const auto& e : fs::directory_iterator(folder)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("shard-", 0) == 0) fs::remove(e.path());
    }
  }
  mpi.barrier();
  return (folder / storage::shardFileName(mpi.process())).string();
}

// This process's clock correction to rank 0's, from the measurements at the start and the end of the
// run (engine/mpi_clock.h), into its shard's meta (storage/shard_meta.h). Processes on process 0's
// host share its CLOCK_MONOTONIC: where the measured offset is within the measurement's error of 0,
// the correction is exactly 0 ("host").
void recordClock(tracer::Tracer& tracer, const engine::MpiRuntime& mpi, const engine::ClockSample& start,
                 const engine::ClockSample& end) {
  storage::ClockCorrection c;
  const std::vector<std::string> hosts = mpi.allGather(mpi.host());
  const int64_t rtt = std::max(start.round_trip_ns, end.round_trip_ns);
  const bool sameHost = hosts[0] == mpi.host();
  if (mpi.process() == 0) {
    c.source = "reference (process 0)";
  } else if (sameHost && std::abs(start.offset_ns) <= rtt && std::abs(end.offset_ns) <= rtt) {
    c.source = "host";
  } else {
    c.source = "mpi ping-pong";
    c.offset_ns = start.offset_ns;
    c.reference_ns = start.local_ns;
    c.uncertainty_ns = rtt / 2;
    const int64_t span = end.local_ns - start.local_ns;
    if (span > 0)
      c.drift_ppb = static_cast<double>(end.offset_ns - start.offset_ns) / static_cast<double>(span) * 1e9;
  }
  tracer.setMeta(std::string(storage::kClockOffsetKey), std::to_string(c.offset_ns));
  tracer.setMeta(std::string(storage::kClockDriftKey), std::to_string(c.drift_ppb));
  tracer.setMeta(std::string(storage::kClockUncertaintyKey), std::to_string(c.uncertainty_ns));
  tracer.setMeta(std::string(storage::kClockReferenceKey), std::to_string(c.reference_ns));
  tracer.setMeta(std::string(storage::kClockSourceKey), c.source);
}

int runTrain(const TrainArgs& args) {
  // 0. The launch: under mpirun or srun this process is one of several (engine/mpi_launch.h); MPI
  // starts only then, so a process started by hand runs as it always did.
  engine::LaunchEnvironment launch;
  std::unique_ptr<engine::MpiRuntime> mpi;
  TestSwitches test;
  try {
    launch = engine::detectLaunch();
    if (args.ranks_per_process && !launch.launched)
      throw InputError(
          "--ranks-per-process needs a launch by mpirun or srun: no MPI launcher's variables "
          "(OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID) in the environment");
    test = readTestSwitches();
    if (launch.launched) mpi = engine::MpiRuntime::start();
  } catch (const InputError& e) {
    std::fprintf(stderr, "moescope-cli train: %s\n", e.what());
    return 2;
  }
  const bool speaks = !mpi || mpi->process() == 0;  // the process that prints progress and results
  const int perProcess = args.ranks_per_process.value_or(1);

  // 1. Everything that can be bad input, before any file is created.
  engine::Config config;
  std::unique_ptr<engine::Backend> backend;
  std::optional<engine::TokenData> data;
  std::optional<engine::ModelWeights> init;
  // The GPU tracer's switches (MOESCOPE_GPU_*), read once; a value they do not take is bad input in
  // every build, with or without the GPU tracer.
  [[maybe_unused]] tracer::gpu::GpuTraceSettings gpu_settings;
  // The CUDA backend's fused paths (MOESCOPE_CUDA_*), read once and refused alike in every build; what a
  // CUDA run takes of them is printed and kept in the run file (cuda.kernels).
  [[maybe_unused]] engine::CudaKernelOptions kernel_options;
  std::string kernels;
  std::string input_error;
  try {
    try {
      gpu_settings = tracer::gpu::readGpuTraceSettings();
      kernel_options = engine::readCudaKernelOptions();
    } catch (const std::invalid_argument& e) {
      throw InputError(e.what());
    }
    config = engine::loadConfigFile(args.config);
    for (const auto& set : args.sets) engine::applyOverride(config, set);
    if (args.steps) config.train.steps = *args.steps;
    if (args.data) config.data.path = *args.data;
    engine::validate(config);
    std::string which = args.backend;
#ifdef MOESCOPE_HAVE_CUDA_BACKEND
    if (which.empty()) which = engine::cuda::deviceCount() > 0 ? "cuda" : "cpu";
#else
    if (which.empty()) which = "cpu";
#endif
    if (which == "cpu") {
      backend = engine::makeCpuBackend();
    } else if (which == "cuda") {
#ifdef MOESCOPE_HAVE_GPU_TRACER
      // A traced CUDA run records NVTX ranges through CUPTI, which NVTX finds only through this
      // variable, read at the process's first NVTX call (NCCL's included): set it before any.
      if (args.out && config.trace.enabled && gpu_settings.enabled && gpu_settings.nvtx)
        tracer::gpu::arrangeNvtxInjection();
#endif
#ifdef MOESCOPE_HAVE_CUDA_BACKEND
      backend = engine::cuda::makeCudaBackend(kernel_options);
#else
      throw InputError("--backend cuda: this build has no CUDA backend (not built); use --backend cpu");
#endif
    } else {
      throw InputError("--backend must be cpu or cuda, got '" + args.backend + "'");
    }
    backend->check(config);
#ifdef MOESCOPE_HAVE_CUDA_BACKEND
    if (which == "cuda") kernels = engine::cuda::describeKernels(config, kernel_options);
#endif
    data = engine::TokenData::load(config);
    if (args.init) init = engine::loadCheckpoint(*args.init, config.model);
    if (args.save) checkWritable("--save", *args.save);
    if (args.metrics) checkWritable("--metrics", *args.metrics);
    if (args.out) checkWritable("--out", *args.out);
  } catch (const InputError& e) {
    input_error = e.what();
  }
  if (mpi) {
    // Every process checks alike, and all stop together when one of them found a problem.
    if (input_error.empty()) input_error = checkProcesses(*mpi, config, backend->name(), perProcess);
    input_error = firstProblem(*mpi, input_error);
  }
  if (!input_error.empty()) {
    if (speaks) std::fprintf(stderr, "moescope-cli train: %s\n", input_error.c_str());
    return 2;
  }
  if (args.dry_run) {
    if (speaks) std::printf("ok\n%s", schedulePlan(config).c_str());
    return 0;
  }

  // 2. The run.
  if (!kernels.empty() && speaks)
    std::fprintf(stderr, "moescope-cli train: CUDA kernels: %s\n", kernels.c_str());
  std::unique_ptr<tracer::Tracer> tracer;
#ifdef MOESCOPE_HAVE_GPU_TRACER
  std::unique_ptr<tracer::gpu::GpuTracer> gpu_tracer;  // kernels, memcpy, memset of a traced CUDA run
#endif
  // The GPU tracer hands its last records to the tracer before the tracer finishes.
  auto finishGpuTracer = [&] {
#ifdef MOESCOPE_HAVE_GPU_TRACER
    if (gpu_tracer) gpu_tracer->finish();
    gpu_tracer.reset();
#endif
  };
  std::string metrics_tmp;
  std::FILE* metrics = nullptr;
  auto closeMetrics = [&](bool keep) {
    if (metrics) std::fclose(metrics);
    metrics = nullptr;
    if (metrics_tmp.empty()) return;
    std::error_code ec;
    if (keep) {
      fs::rename(metrics_tmp, *args.metrics, ec);
      if (ec) throw std::runtime_error("cannot rename '" + metrics_tmp + "': " + ec.message());
    } else {
      fs::remove(metrics_tmp, ec);
    }
  };
  g_cancel.store(false);
  auto previous = std::signal(SIGINT, onInterrupt);
  struct RestoreSignal {
    decltype(previous) handler;
    ~RestoreSignal() { std::signal(SIGINT, handler); }
  } restore{previous};
  if (mpi) {
    g_terminate.store(false);
    std::signal(SIGTERM, onTerminate);
  }
  // A multi-process run: each process records its ranks into its shard, process 0 merges them into --out.
  std::string shard;
  engine::ClockSample clock_start;
  std::unique_ptr<engine::MpiWorld> mpi_world;

  try {
    if (args.out) {
      const std::string name = fs::path(*args.out).stem().string();
      storage::RunInfo info = engine::makeRunInfo(config, *backend, name);
      if (mpi) {
        tracer::shiftClockForTests(test.clock_skew_ns);
        shard = prepareShards(*mpi, *args.out);
        std::random_device random;
        const std::string run_id =
            mpi->broadcast(std::to_string(tracer::nowNs()) + "-" + std::to_string(random()));
        info.devices += ", " + std::to_string(mpi->processes()) + " processes (" + launch.launcher + ")";
        tracer = tracer::Tracer::open(shard, info);
        tracer->setMeta(std::string(storage::kShardIndexKey), std::to_string(mpi->process()));
        tracer->setMeta(std::string(storage::kShardCountKey), std::to_string(mpi->processes()));
        tracer->setMeta(std::string(storage::kShardRunIdKey), run_id);
        std::string ranks;
        for (int r = 0; r < perProcess; ++r)
          ranks += (r ? "," : "") + std::to_string(mpi->process() * perProcess + r);
        tracer->setMeta(std::string(storage::kShardRanksKey), ranks);
      } else {
        tracer = tracer::Tracer::open(*args.out, info);
      }
      tracer->setMeta("engine.config_file", args.config);
      if (!kernels.empty()) tracer->setMeta("cuda.kernels", kernels);
#ifdef MOESCOPE_HAVE_GPU_TRACER
      if (backend->name() == "cuda" && config.trace.enabled && gpu_settings.enabled) {
        try {
          gpu_tracer =
              tracer::gpu::GpuTracer::start(*tracer, tracer::gpu::GpuTracerOptions::from(gpu_settings));
        } catch (const std::exception& e) {  // CUPTI unavailable or owned by another profiler
          std::fprintf(stderr, "moescope-cli train: GPU tracing is off: %s\n", e.what());
          tracer->setMeta("cupti.error", e.what());
        }
      }
#endif
    }
    if (args.metrics && speaks) {
      metrics_tmp = *args.metrics + ".tmp";
      metrics = std::fopen(metrics_tmp.c_str(), "w");
      if (!metrics) throw std::runtime_error("cannot write '" + metrics_tmp + "'");
    }
    engine::TrainOptions options;
    options.config = config;
    options.data = &*data;
    options.init = init ? &*init : nullptr;
    options.backend = backend.get();
    options.tracer = tracer.get();
    options.cancel = &g_cancel;
    options.gather_weights = args.save.has_value();
    double elapsed_ms = 0;
    options.on_step = [&](const engine::StepReport& r) {
      elapsed_ms += r.step_ms;
      const double eta =
          elapsed_ms / (r.step + 1) * static_cast<double>(config.train.steps - r.step - 1) / 1e3;
      std::fprintf(stderr, "step %d/%lld  loss %.4f (ce %.4f, aux %.4f)  %.0f tokens/s  %.1f ms  ETA %s\n",
                   r.step + 1, static_cast<long long>(config.train.steps), r.losses.loss, r.losses.ce,
                   r.losses.aux, r.tokens_per_s, r.step_ms, formatDuration(eta).c_str());
      if (metrics) {
        std::fprintf(
            metrics,
            "{\"step\": %d, \"loss\": %.9g, \"ce_loss\": %.9g, \"aux_loss\": %.9g, \"tokens\": %lld, "
            "\"step_ms\": %.6g, \"tokens_per_s\": %.6g, \"grad_norm\": %.9g}\n",
            r.step, r.losses.loss, r.losses.ce, r.losses.aux, static_cast<long long>(r.tokens), r.step_ms,
            r.tokens_per_s, r.losses.grad_norm);
        std::fflush(metrics);
      }
    };
    if (mpi) {
      if (!args.out) tracer::shiftClockForTests(test.clock_skew_ns);
      clock_start = engine::measureClock(*mpi);
      std::vector<int64_t> offsets;
      for (const std::string& o : mpi->allGather(std::to_string(clock_start.offset_ns)))
        offsets.push_back(std::stoll(o));
      options.first_rank = mpi->process() * perProcess;
      options.local_ranks = perProcess;
      options.host = mpi->host();
      if (mpi->processes() > 1) {
        mpi_world = std::make_unique<engine::MpiWorld>(static_cast<int>(config.worldSize()), perProcess,
                                                       std::move(offsets), &g_terminate);
        options.world = mpi_world.get();
      }
    }
    if (test.slow_rank >= 0 || test.fail_rank >= 0) {
      options.before_pass = [test](int rank) {
        if (rank == test.slow_rank) std::this_thread::sleep_for(std::chrono::milliseconds(test.slow_ms));
        if (rank == test.fail_rank) throw std::runtime_error("failing on purpose (MOESCOPE_TEST_FAIL_RANK)");
      };
    }
    engine::TrainResult result = engine::train(options);
    if (mpi) {
      if (tracer) recordClock(*tracer, *mpi, clock_start, engine::measureClock(*mpi));
      if (args.save) mpi->gatherWeights(result.weights);
    }
    if (args.save && speaks) engine::saveCheckpoint(*args.save, config.model, result.weights);
    closeMetrics(true);
    finishGpuTracer();
    if (tracer) tracer->finish(storage::RunStatus::Complete, "");
    if (mpi && args.out) {
      mpi->barrier();  // every shard is whole
      if (speaks) {
        const storage::MergeReport merged =
            storage::mergeShards(storage::listShards(storage::shardsFolderName(*args.out)), *args.out);
        std::fprintf(stderr, "moescope-cli train: %s: %d processes merged, %lld spans\n", args.out->c_str(),
                     merged.shards, static_cast<long long>(merged.spans));
      }
    }
    return 0;
  } catch (const engine::Cancelled& e) {
    if (mpi && g_terminate.load()) {
      // The launcher ends this process because another one stopped: keep what this shard recorded.
      try {
        closeMetrics(false);
        if (tracer) tracer->finish(storage::RunStatus::Failed, "stopped: another process of the run ended");
      } catch (const std::exception&) {
      }
      std::_Exit(1);  // the others are gone: MPI cannot finalize
    }
    std::fprintf(stderr, "moescope-cli train: cancelled\n");
    try {
      closeMetrics(false);
      finishGpuTracer();
      if (tracer) tracer->finish(storage::RunStatus::Cancelled, "cancelled (interrupt)");
    } catch (const std::exception& inner) {
      std::fprintf(stderr, "moescope-cli train: %s\n", inner.what());
    }
    return 130;
  } catch (const std::exception& e) {
    if (mpi) {
      std::fprintf(stderr, "moescope-cli train: process %d on %s failed: %s\n", mpi->process(),
                   mpi->host().c_str(), e.what());
    } else {
      std::fprintf(stderr, "moescope-cli train: %s\n", e.what());
    }
    try {
      closeMetrics(false);
      finishGpuTracer();
      if (tracer) tracer->finish(storage::RunStatus::Failed, e.what());
    } catch (const std::exception& inner) {
      std::fprintf(stderr, "moescope-cli train: %s\n", inner.what());
    }
    // The other processes may be waiting on this one: end the job (the launcher ends them).
    if (mpi && mpi->processes() > 1) mpi->abort(1);
    return 1;
  }
}

}  // namespace

void registerTrain(CLI::App& cli, CommandAction& action) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = cli.add_subcommand("train", "train a model under a parallel layout, traced into a run file");
  cmd->add_option("--config", args->config, "run configuration (TOML)")->required();
  cmd->add_option("--set", args->sets, "override one key: section.key=value (repeatable)");
  cmd->add_option("--backend", args->backend, "cpu or cuda (default: cuda where a GPU is present, else cpu)");
  cmd->add_option("--steps", args->steps, "optimizer steps (overrides train.steps)");
  cmd->add_option("--data", args->data,
                  "token data: a .npy file, a raw byte file, \"random\" (overrides data.path)");
  cmd->add_option("--init", args->init, "load all weights from this safetensors checkpoint before step 0");
  cmd->add_option("--save", args->save,
                  "write the weights to this safetensors checkpoint after the last step");
  cmd->add_option("--metrics", args->metrics, "write one JSON object per step to this file");
  cmd->add_option("--out", args->out, "the run file (SQLite trace)");
  cmd->add_option(
      "--ranks-per-process", args->ranks_per_process,
      "under mpirun or srun: ranks each process runs as threads (default 1; processes x this = "
      "pp x tp x dp); each process records a shard beside --out (RUN.shards/), merged into --out");
  cmd->add_flag(
      "--dry-run", args->dry_run,
      "check config, layout, data, checkpoint and output folders as a run does; print ok and the schedule's "
      "passes per stage (F/B/W, micro-batch.chunk); write nothing");
  cmd->footer("Environment, the GPU tracer of a traced CUDA run:\n" + tracer::gpu::gpuTraceVariablesHelp() +
              "Environment, the CUDA backend's fused paths (for A/B measurements):\n" +
              engine::cudaKernelOptionsHelp());
  cmd->callback([&action, args] { action = [args] { return runTrain(*args); }; });
}

}  // namespace moescope::app
