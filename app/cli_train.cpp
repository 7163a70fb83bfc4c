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
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "app/cli_commands.h"
#include "app/cli_common.h"
#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/cuda_kernel_options.h"
#include "engine/data.h"
#include "engine/engine_error.h"
#include "engine/memory_estimate.h"
#include "engine/schedule.h"
#include "engine/trainer.h"
#include "storage/analysis_bubbles.h"
#include "storage/output_file.h"
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

// The first SIGINT or SIGTERM asks the ranks to stop between micro-batches; a second one ends the
// process at once, as the signal would, after removing the temporary files.
extern "C" void onStopSignal(int sig) {
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

// One JSON object per completed step, through nlohmann-json (a NaN loss is written as null, valid JSON).
std::string metricsLine(const engine::StepReport& r) {
  const nlohmann::ordered_json j = {{"step", r.step},
                                    {"loss", r.losses.loss},
                                    {"ce_loss", r.losses.ce},
                                    {"aux_loss", r.losses.aux},
                                    {"tokens", r.tokens},
                                    {"step_ms", r.step_ms},
                                    {"tokens_per_s", r.tokens_per_s},
                                    {"grad_norm", r.losses.grad_norm}};
  return j.dump() + "\n";
}

// The outputs of a run, opened (and so checked) before it starts. Declared before the tracer in
// runTrain, so destroyed after it: the run file's lock must outlive SQLite's connection to it.
struct TrainOutputs {
  std::unique_ptr<storage::OutputFile> out, save, metrics;
};

TrainOutputs openOutputs(const TrainArgs& args, const engine::Config& config) {
  std::vector<storage::OutputPath> outputs;
  if (args.out) outputs.push_back({"--out", *args.out});
  if (args.save) outputs.push_back({"--save", *args.save});
  if (args.metrics) outputs.push_back({"--metrics", *args.metrics});
  storage::checkOutputs(outputs, runInputs(args, config));
  TrainOutputs o;
  using Kind = storage::OutputFile::Kind;
  if (args.out) o.out = storage::OutputFile::open({"--out", *args.out}, args.force, Kind::GrowingRunFile);
  if (args.save) o.save = storage::OutputFile::open({"--save", *args.save}, args.force);
  if (args.metrics) o.metrics = storage::OutputFile::open({"--metrics", *args.metrics}, args.force);
  return o;
}

int runTrain(const TrainArgs& args) {
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
    outputs = openOutputs(args, config);
  } catch (const InputError& e) {
    std::fprintf(stderr, "moescope-cli train: %s\n", e.what());
    return 2;
  } catch (const storage::OutputRefused& e) {
    std::fprintf(stderr, "moescope-cli train: %s\n", e.what());
    return 2;
  }
  if (args.dry_run) {
    std::printf("ok\n%s", schedulePlan(config).c_str());
    return 0;  // the outputs' destructors remove what opening them made
  }

  // 2. The run.
  if (!kernels.empty()) std::fprintf(stderr, "moescope-cli train: CUDA kernels: %s\n", kernels.c_str());
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
      if (outputs.out && (outputs.out->inPlace() || status == storage::RunStatus::Complete)) {
        outputs.out->commit();
      } else if (outputs.out) {
        outputs.out->discard();
        keptOld = "; '" + *args.out + "' is kept as it was";
      }
    } catch (const std::exception& e) {
      finishProblem = e.what();
      tracer.reset();
      if (outputs.out && !outputs.out->inPlace()) {
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

  try {
    if (outputs.metrics) {
      metrics.open(outputs.metrics->writePath(), std::ios::binary | std::ios::trunc);
      if (!metrics) throw std::runtime_error("--metrics '" + *args.metrics + "': cannot write");
    }
    if (outputs.out) {
      const std::string name = fs::path(*args.out).stem().string();
      tracer = tracer::Tracer::open(outputs.out->writePath(), engine::makeRunInfo(config, *backend, name));
      tracer->setMeta("engine.config_file", args.config);
      if (!kernels.empty()) tracer->setMeta("cuda.kernels", kernels);
      tracer->setMeta(std::string(storage::kMetaStepsRecorded), std::string(storage::kStepsInStepMetric));
      // The planner shares these cores among a CPU run's rank threads when it predicts from this run.
      tracer->setMeta("host.cores", std::to_string(std::max(1u, std::thread::hardware_concurrency())));
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
    engine::TrainResult result = engine::train(options);
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
    // The tracer's last writes may have failed (a full disk as the run ended).
    if (const std::string problem = !writeError.empty() ? writeError : finishProblem; !problem.empty()) {
      std::fprintf(stderr, "moescope-cli train: %s%s\n", problem.c_str(), keptOld.c_str());
      return 1;
    }
    return 0;
  } catch (const engine::Cancelled&) {
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
    std::fprintf(stderr, "moescope-cli train: %s%s%s\n", error.c_str(), note.c_str(), keptOld.c_str());
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
  cmd->add_option("--metrics", args->metrics, "write one JSON object per completed step to this file");
  cmd->add_option("--out", args->out, "the run file (SQLite trace)");
  addForceFlag(cmd, args->force);
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
