// moescope-cli train: MODEL.md's train command. Everything given is checked before any file is made
// (config and its limits, the memory the model needs, layout, data, --init checkpoint, and the outputs:
// never an input nor each other, never a folder, link or device, an existing one only with --force,
// their folders taking new files); bad input is exit 2 with one line.
//
// The run file (--out) is written where it is named when new, so the GUI can watch it grow; it stays
// readable however the run ends, marked complete, failed or cancelled. Replacing an existing run
// (--force), and the checkpoint and metrics always, are written under temporary names and renamed into
// place once whole (storage/output_file.h). A failure during the run (a full disk among them: the run
// stops at the step after its first failed write) is exit 1 with one line, the run file marked failed.
// SIGINT or SIGTERM cancels between micro-batches: the run file is marked cancelled, the metrics of the
// completed steps are kept, and the exit status is 128 + the signal; a second signal ends the process
// at once (temporary files removed). --dry-run does every check, prints "ok" and the schedule's passes
// per stage, and writes nothing.
//
// Under mpirun or srun each process runs its ranks and records them into a shard beside --out
// (RUN.moescope.shards/); process 0 writes the checkpoint and the metrics, and merges the shards into
// --out (written whole, then renamed into place). A SIGTERM there is the launcher stopping the job
// because another process ended: the shard is marked failed and the process exits 1.
#include <algorithm>
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
#include <vector>

#include "app/cli_commands.h"
#include "app/cli_common.h"
#include "app/metrics_line.h"
#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/cuda_kernel_options.h"
#include "engine/data.h"
#include "engine/engine_error.h"
#include "engine/host_cores.h"
#include "engine/memory_estimate.h"
#include "engine/mpi_clock.h"
#include "engine/mpi_communicator.h"
#include "engine/mpi_launch.h"
#include "engine/mpi_runtime.h"
#include "engine/schedule.h"
#include "engine/trainer.h"
#include "storage/analysis_bubbles.h"
#include "storage/output_file.h"
#include "storage/report_text.h"
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
std::atomic<int> g_signal{0};
// Set by SIGTERM in a run launched by mpirun or srun (g_launched): the launcher ends the other processes
// this way when one of them died; blocked communication stops (MpiWorld polls it) and the shard is
// marked failed. The launcher may repeat it and follows with SIGKILL itself, so there a SIGTERM never
// ends the process at once: the shard's status is written first.
std::atomic<bool> g_terminate{false};
std::atomic<bool> g_launched{false};

// The first SIGINT or SIGTERM asks the ranks to stop between micro-batches; a second one ends the
// process at once, as the signal would, after removing the temporary files.
extern "C" void onStopSignal(int sig) {
  if (sig == SIGTERM && g_launched.load()) {
    g_signal.store(sig);
    g_terminate.store(true);
    g_cancel.store(true);
    return;
  }
  if (g_cancel.exchange(true)) {
    storage::removeTemporaryFiles();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_signal.store(sig);
}

struct TrainArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string backend;  // "": cuda where a GPU is present, else cpu
  std::optional<int64_t> steps;
  std::optional<std::string> data, init, save, metrics, out;
  std::optional<int> ranks_per_process;
  bool dry_run = false;
  bool force = false;
};

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

// The files a run reads: an output may be none of them.
std::vector<fs::path> runInputs(const TrainArgs& args, const engine::Config& config) {
  std::vector<fs::path> inputs{args.config};
  if (!config.data.path.empty() && config.data.path != "random") inputs.emplace_back(config.data.path);
  if (args.init) inputs.emplace_back(*args.init);
  return inputs;
}

// The line a complete run ends with: its steps, the median tokens/s of those after the first (the
// warm-up) and, where the backend counts it, the most device memory one rank held.
std::string runSummary(const std::vector<engine::StepReport>& steps) {
  std::vector<double> rates;
  for (size_t i = steps.size() > 1 ? 1 : 0; i < steps.size(); ++i) rates.push_back(steps[i].tokens_per_s);
  std::sort(rates.begin(), rates.end());
  int64_t peak = 0;
  for (const engine::StepReport& r : steps) peak = std::max(peak, r.peak_memory_bytes);
  char buf[160];
  std::snprintf(buf, sizeof buf, "done: %zu steps, %.0f tokens/s (median%s)", steps.size(),
                rates.empty() ? 0.0 : rates[(rates.size() - 1) / 2],
                steps.size() > 1 ? " after the first" : "");
  std::string line = buf;
  if (peak > 0)
    line +=
        ", peak device memory " + storage::report_text::memory(static_cast<double>(peak)) + " (largest rank)";
  return line + "\n";
}

// The outputs of a run, opened (and so checked) before it starts. Declared before the tracer in
// runTrain, so destroyed after it: the run file's lock must outlive SQLite's connection to it.
struct TrainOutputs {
  std::unique_ptr<storage::OutputFile> out, save, metrics;
};

// Under a launcher (mpi), every process checks the outputs and process 0 alone opens them: the run
// file it writes is the shards' merge, whole at once (RunFile, not GrowingRunFile).
TrainOutputs openOutputs(const TrainArgs& args, const engine::Config& config, const engine::MpiRuntime* mpi) {
  std::vector<storage::OutputPath> outputs;
  if (args.out) outputs.push_back({"--out", *args.out});
  if (args.save) outputs.push_back({"--save", *args.save});
  if (args.metrics) outputs.push_back({"--metrics", *args.metrics});
  storage::checkOutputs(outputs, runInputs(args, config));
  TrainOutputs o;
  if (mpi && mpi->process() != 0) return o;
  using Kind = storage::OutputFile::Kind;
  if (args.out)
    o.out = storage::OutputFile::open({"--out", *args.out}, args.force,
                                      mpi ? Kind::RunFile : Kind::GrowingRunFile);
  if (args.save) o.save = storage::OutputFile::open({"--save", *args.save}, args.force);
  if (args.metrics) o.metrics = storage::OutputFile::open({"--metrics", *args.metrics}, args.force);
  return o;
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
  // Gathered first, on every process alike: a return before the exchange would leave the others waiting.
  const std::string mine = engine::toToml(config) + "\nbackend = " + backend + "\n";
  const std::vector<std::string> all = mpi.allGather(mine);
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
  g_launched.store(mpi != nullptr);

  // 1. Everything that can be bad input, before any file is created.
  engine::Config config;
  std::unique_ptr<engine::Backend> backend;
  std::optional<engine::TokenData> data;
  std::optional<engine::ModelWeights> init;
  TrainOutputs outputs;
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
    engine::checkModelSize(config);
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
      engine::cuda::CudaPlacement placement;
      if (mpi && perProcess >= 1) {
        // One GPU per rank: the node's processes side by side by local rank, NCCL's ids over MPI.
        placement.first_rank = mpi->process() * perProcess;
        placement.ranks = perProcess;
        placement.first_device = launch.local_rank * perProcess;
        placement.processes.process = mpi->process();
        placement.processes.process_of = [perProcess](int rank) { return rank / perProcess; };
        const engine::MpiRuntime* runtime = mpi.get();
        placement.processes.send = [runtime](int to, uint64_t tag, const std::vector<std::byte>& bytes) {
          runtime->sendBytes(to, tag, bytes);
        };
        placement.processes.recv = [runtime](int from, uint64_t tag, std::vector<std::byte>& bytes) {
          runtime->recvBytes(from, tag, bytes);
        };
      }
      backend = engine::cuda::makeCudaBackend(kernel_options, std::move(placement));
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
    outputs = openOutputs(args, config, mpi.get());
  } catch (const InputError& e) {
    input_error = e.what();
  } catch (const storage::OutputRefused& e) {
    input_error = e.what();
  }
  if (mpi) {
    // Every process checks alike, and all stop together when one of them found a problem: first what
    // each found alone (a GPU its local rank names that its node lacks, a file only one node misses),
    // then, all being well, what the processes must agree on. Each step is an exchange every process
    // makes, whatever it found.
    input_error = firstProblem(*mpi, input_error);
    if (input_error.empty())
      input_error = firstProblem(*mpi, checkProcesses(*mpi, config, backend->name(), perProcess));
  }
  if (!input_error.empty()) {
    if (speaks) std::fprintf(stderr, "moescope-cli train: %s\n", input_error.c_str());
    return 2;  // the outputs' destructors remove what opening them made
  }
  if (args.dry_run) {
    if (speaks) std::printf("ok\n%s", schedulePlan(config).c_str());
    return 0;  // the outputs' destructors remove what opening them made
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
  std::ofstream metrics;
  bool metricsWhole = true;  // every line written so far reached the file
  // Publishes the metrics of the steps that completed, when every line of them was written; returns
  // the problem, if publishing failed.
  auto closeMetrics = [&]() -> std::string {
    if (!outputs.metrics) return "";
    metrics.close();
    if (!metricsWhole || !metrics) {
      outputs.metrics->discard();
      return metricsWhole ? "--metrics '" + *args.metrics + "': writing failed (is the disk full?)" : "";
    }
    try {
      outputs.metrics->commit();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  // Ends the run file with a status. A new run file stays however the run ended; a run replacing an
  // existing one (--force) takes its place only when it completed, else the old one is kept as it was.
  // Under a launcher the tracer writes this process's shard, and --out is the merge made afterwards.
  std::string finishProblem;  // the status could not be written (a full disk), or the rename failed
  std::string keptOld;        // "; 'X' is kept as it was" when a replacement was given up
  std::string writeError;     // a write of the run file that failed (the run is then marked failed)
  auto finishRun = [&](storage::RunStatus status, const std::string& error) {
    try {
      finishGpuTracer();
      if (tracer) tracer->finish(status, error);
      if (tracer) writeError = tracer->error();
      if (!writeError.empty()) status = storage::RunStatus::Failed;
      tracer.reset();
      if (mpi) return;
      if (outputs.out && (outputs.out->inPlace() || status == storage::RunStatus::Complete)) {
        outputs.out->commit();
      } else if (outputs.out) {
        outputs.out->discard();
        keptOld = "; '" + *args.out + "' is kept as it was";
      }
    } catch (const std::exception& e) {
      finishProblem = e.what();
      tracer.reset();
      if (outputs.out && !outputs.out->inPlace() && !mpi) {
        outputs.out->discard();
        keptOld = "; '" + *args.out + "' is kept as it was";
      }
    }
  };
  g_cancel.store(false);
  g_signal.store(0);
  auto previousInt = std::signal(SIGINT, onStopSignal);
  auto previousTerm = std::signal(SIGTERM, onStopSignal);
  struct RestoreSignals {
    decltype(previousInt) onInt, onTerm;
    ~RestoreSignals() {
      std::signal(SIGINT, onInt);
      std::signal(SIGTERM, onTerm);
    }
  } restore{previousInt, previousTerm};
  g_terminate.store(false);
  // A multi-process run: each process records its ranks into its shard, process 0 merges them into --out.
  std::string shard;
  engine::ClockSample clock_start;
  std::unique_ptr<engine::MpiWorld> mpi_world;

  try {
    if (outputs.metrics) {
      metrics.open(outputs.metrics->writePath(), std::ios::binary | std::ios::trunc);
      if (!metrics) throw std::runtime_error("--metrics '" + *args.metrics + "': cannot write");
    }
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
        tracer = tracer::Tracer::open(outputs.out->writePath(), info);
      }
      tracer->setMeta("engine.config_file", args.config);
      if (!kernels.empty()) tracer->setMeta("cuda.kernels", kernels);
      tracer->setMeta(std::string(storage::kMetaStepsRecorded), std::string(storage::kStepsInStepMetric));
      // The planner shares these cores among a CPU run's rank threads when it predicts from this run:
      // the ones the process may run on (a run pinned by taskset records its pinned cores).
      tracer->setMeta("host.cores", std::to_string(engine::usableCores()));
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
      if (outputs.metrics) {
        metrics << metricsLine(r);
        metrics.flush();
        if (!metrics) {
          metricsWhole = false;
          throw std::runtime_error("--metrics '" + *args.metrics + "': writing failed (is the disk full?)");
        }
      }
      // The tracer writes in the background; a write it could not make ends the run here, one step
      // after it at most, rather than after every step was computed.
      if (tracer) {
        if (const std::string error = tracer->error(); !error.empty()) throw std::runtime_error(error);
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
      // The CPU backend's ranks talk through MPI; the CUDA backend's through NCCL (its own world, whose
      // ids travel over MPI: the placement above).
      if (mpi->processes() > 1 && backend->name() == "cpu") {
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
    if (outputs.save) {
      try {
        storage::writeOutput(*outputs.save, [&](std::ostream& out) {
          engine::writeCheckpoint(out, config.model, result.weights);
        });
      } catch (const storage::StorageError& e) {
        throw std::runtime_error(std::string("checkpoint not written: ") + e.what());
      }
    }
    if (const std::string problem = closeMetrics(); !problem.empty()) throw std::runtime_error(problem);
    finishRun(storage::RunStatus::Complete, "");
    // The tracer's last writes may have failed (a full disk as the run ended); under a launcher, on
    // any process (which also waits for every shard to be whole).
    std::string problem = !writeError.empty() ? writeError : finishProblem;
    if (mpi) problem = firstProblem(*mpi, problem);
    if (!problem.empty()) {
      if (speaks) std::fprintf(stderr, "moescope-cli train: %s%s\n", problem.c_str(), keptOld.c_str());
      return 1;
    }
    if (mpi && outputs.out) {
      const storage::MergeReport merged = storage::mergeShards(
          storage::listShards(storage::shardsFolderName(*args.out)), outputs.out->writePath());
      outputs.out->commit();
      std::fprintf(stderr, "moescope-cli train: %s: %d processes merged, %lld spans\n", args.out->c_str(),
                   merged.shards, static_cast<long long>(merged.spans));
    }
    if (speaks && !result.steps.empty()) std::fputs(runSummary(result.steps).c_str(), stderr);
    return 0;
  } catch (const engine::Cancelled&) {
    if (mpi && g_terminate.load()) {
      // The launcher ends this process because another one stopped: keep what this shard recorded.
      closeMetrics();
      finishRun(storage::RunStatus::Failed, "stopped: another process of the run ended");
      outputs = TrainOutputs{};  // their temporary files
      std::_Exit(1);             // the others are gone: MPI cannot finalize
    }
    const int sig = g_signal.load();
    const std::string reason = sig == SIGTERM ? "cancelled (SIGTERM)" : "cancelled (interrupt)";
    if (const std::string problem = closeMetrics(); !problem.empty()) finishProblem = problem;
    finishRun(storage::RunStatus::Cancelled, reason);
    const std::string note =
        finishProblem.empty() ? "" : "; the run file could not be finished: " + finishProblem;
    std::fprintf(stderr, "moescope-cli train: %s%s%s\n", reason.c_str(), note.c_str(), keptOld.c_str());
    return 128 + (sig > 0 ? sig : SIGINT);
  } catch (const std::exception& e) {
    const std::string error = e.what();
    closeMetrics();  // the failure is the one to report
    finishRun(storage::RunStatus::Failed, error);
    const std::string note =
        finishProblem.empty() ? "" : "; its status could not be written (" + finishProblem + ")";
    const std::string who =
        mpi ? "process " + std::to_string(mpi->process()) + " on " + mpi->host() + " failed: " : "";
    std::fprintf(stderr, "moescope-cli train: %s%s%s%s\n", who.c_str(), error.c_str(), note.c_str(),
                 keptOld.c_str());
    // The other processes may be waiting on this one: end the job (the launcher ends them).
    if (mpi && mpi->processes() > 1) {
      outputs = TrainOutputs{};  // their temporary files
      mpi->abort(1);
    }
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
  cmd->add_option("--metrics", args->metrics,
                  "write one JSON object per completed step to this file (with peak_memory_bytes where the "
                  "backend counts device memory: cuda)");
  cmd->add_option("--out", args->out, "the run file (SQLite trace)");
  addForceFlag(cmd, args->force);
  cmd->add_option(
      "--ranks-per-process", args->ranks_per_process,
      "under mpirun or srun: ranks each process runs as threads (default 1; processes x this = "
      "pp x tp x dp); each process records a shard beside --out (RUN.shards/), merged into --out");
  cmd->add_flag(
      "--dry-run", args->dry_run,
      "check config, memory, layout, data, checkpoint and outputs as a run does; print ok and the schedule's "
      "passes per stage (F/B/W, micro-batch.chunk); write nothing");
  cmd->footer("Environment, the GPU tracer of a traced CUDA run:\n" + tracer::gpu::gpuTraceVariablesHelp() +
              "Environment, the CUDA backend's fused paths (for A/B measurements):\n" +
              engine::cudaKernelOptionsHelp());
  cmd->callback([&action, args] { action = [args] { return runTrain(*args); }; });
}

}  // namespace moescope::app
