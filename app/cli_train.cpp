// moescope-cli train: MODEL.md's train command. Everything given is checked (config, layout, data,
// --init checkpoint, output folders) before any file is created; bad input is exit 2 with one line.
// A run that fails is exit 1 with its run file marked failed; Ctrl-C cancels between micro-batches
// (exit 130, run file marked cancelled). Checkpoint and metrics are written to temporary names and
// renamed when complete. --dry-run does every check of a run, prints "ok" and the schedule's passes per
// stage, and writes nothing.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
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
#include "engine/schedule.h"
#include "engine/trainer.h"
#include "storage/analysis_bubbles.h"
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

int runTrain(const TrainArgs& args) {
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
    std::fprintf(stderr, "moescope-cli train: %s\n", e.what());
    return 2;
  }
  if (args.dry_run) {
    std::printf("ok\n%s", schedulePlan(config).c_str());
    return 0;
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

  try {
    if (args.out) {
      const std::string name = fs::path(*args.out).stem().string();
      tracer = tracer::Tracer::open(*args.out, engine::makeRunInfo(config, *backend, name));
      tracer->setMeta("engine.config_file", args.config);
      if (!kernels.empty()) tracer->setMeta("cuda.kernels", kernels);
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
    if (args.metrics) {
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
    engine::TrainResult result = engine::train(options);
    if (args.save) engine::saveCheckpoint(*args.save, config.model, result.weights);
    closeMetrics(true);
    finishGpuTracer();
    if (tracer) tracer->finish(storage::RunStatus::Complete, "");
    return 0;
  } catch (const engine::Cancelled& e) {
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
    std::fprintf(stderr, "moescope-cli train: %s\n", e.what());
    try {
      closeMetrics(false);
      finishGpuTracer();
      if (tracer) tracer->finish(storage::RunStatus::Failed, e.what());
    } catch (const std::exception& inner) {
      std::fprintf(stderr, "moescope-cli train: %s\n", inner.what());
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
  cmd->add_option("--metrics", args->metrics, "write one JSON object per step to this file");
  cmd->add_option("--out", args->out, "the run file (SQLite trace)");
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
