// The trace model of DESIGN.md as plain data: what one run file holds. Shared by the writer, the
// reader, the analysis, the tracer and the GUI. Time is int64 nanoseconds on CLOCK_MONOTONIC of the
// host that ran the run (std::chrono::steady_clock on Linux); GPU timestamps are mapped onto it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moescope::storage {

// The fixed category vocabulary of DESIGN.md. The numeric values are stored in run files: append only.
enum class Category : uint8_t {
  ComputeEmbed = 0,
  ComputeAttention,
  ComputeFfn,
  ComputeRouter,
  ComputeExpert,
  ComputeLoss,
  MoeSlice,
  MoePermute,
  CommTpAllreduce,
  CommEpAlltoall,
  CommPpSendrecv,
  CommDpAllreduce,
  Optimizer,
  Wait,
  // A range no naming rule gave a category (imported and recorded programs): kept on its thread's row
  // and counted as busy, but neither computation nor communication.
  User,
};
inline constexpr int kCategoryCount = 15;

// "compute.attention", "comm.tp_allreduce", ...
std::string_view categoryName(Category c);
std::optional<Category> categoryFromName(std::string_view name);
bool isCommunication(Category c);  // comm.*
bool isComputation(Category c);    // compute.*, moe.*, optimizer (not wait, not user)
// The category's colour as 0xAARRGGBB: one palette for the timeline, its legend, exports and NVTX.
uint32_t categoryColour(Category c);

// BackwardWeight: the weight-gradient passes of a schedule that splits the backward (ZB-H1's W); the
// backward of every other schedule computes both gradients under Backward.
enum class Phase : uint8_t { None = 0, Forward, Backward, Optimizer, BackwardWeight };
inline constexpr int kPhaseCount = 5;
std::string_view phaseName(Phase p);  // "", "forward", "backward", "optimizer", "backward_weight"
std::optional<Phase> phaseFromName(std::string_view name);

enum class RunStatus : uint8_t { Running = 0, Complete, Failed, Cancelled };
inline constexpr int kRunStatusCount = 4;
std::string_view runStatusName(RunStatus s);  // "running", "complete", "failed", "cancelled"
std::optional<RunStatus> runStatusFromName(std::string_view name);

enum class TrackKind : uint8_t { HostThread = 0, GpuStream, Counter };
inline constexpr int kTrackKindCount = 3;
std::string_view trackKindName(TrackKind k);  // "host", "gpu_stream", "counter"

enum class GpuActivityKind : uint8_t { Kernel = 0, Memcpy, Memset };
inline constexpr int kGpuActivityKindCount = 3;
std::string_view gpuActivityKindName(GpuActivityKind k);  // "kernel", "memcpy", "memset"

// Pipeline schedules (the engine's engine/schedule.h orders their passes).
enum class Schedule : uint8_t { GPipe = 0, OneFOneB, Interleaved, ZbH1 };
inline constexpr int kScheduleCount = 4;
std::string_view scheduleName(Schedule s);  // "gpipe", "1f1b", "interleaved", "zb-h1"
std::optional<Schedule> scheduleFromName(std::string_view name);

// The counter track each rank records its peak activation memory on: per step, the bytes of saved
// activations it held at the step's worst moment.
inline constexpr std::string_view kPeakActivationCounter = "peak activation bytes";
// The counter track each rank of a backend that counts its device memory (CUDA) records its device's
// peak on: per step, the most the engine's allocations held on it at once since the run started
// (StepMetric::peak_memory_bytes is the largest of these over the ranks of the process that holds rank 0).
inline constexpr std::string_view kPeakDeviceMemoryCounter = "peak device memory bytes";

// "None" for the optional integer fields of a span.
inline constexpr int32_t kNone = -1;

// Every time in a run file lies in [0, kMaxTime] (2^62 ns, 146 years): the reader refuses others, so
// the difference of any two times fits int64 (a span's duration, a run's extent).
inline constexpr int64_t kMaxTime = int64_t{1} << 62;

struct RunInfo {
  std::string name;
  std::string config;   // the full TOML the run was started with
  std::string layout;   // "ppmoe" | "dpmoe" | "dense"
  std::string backend;  // "cpu" | "cuda"
  std::string devices;  // e.g. "2 x NVIDIA H200" or "cpu (2 threads)"
  std::string clock = "CLOCK_MONOTONIC";
  int32_t pp = 1, tp = 1, dp = 1, microbatches = 1;
  Schedule schedule = Schedule::OneFOneB;
  int32_t virtual_stages = 1;  // model chunks per stage (interleaved)
  int64_t tokens_per_step = 0;
  RunStatus status = RunStatus::Running;
  std::string error;
  int64_t start_ns = 0, end_ns = 0;
  // A run the planner predicted rather than measured (run_meta `run.predicted` = 1), and the measured
  // run its costs came from (`run.calibration`, a path). Every view that shows a run says "predicted".
  bool predicted = false;
  std::string calibration;
  bool operator==(const RunInfo&) const = default;
};

// The run_meta keys of a predicted run (RunInfo::predicted, RunInfo::calibration).
inline constexpr std::string_view kPredictedMeta = "run.predicted";
inline constexpr std::string_view kCalibrationMeta = "run.calibration";

struct RankInfo {
  int32_t rank = 0;
  int32_t stage = 0, tp_rank = 0, dp_rank = 0;
  int32_t device = kNone;  // GPU ordinal, kNone on the CPU backend
  std::string host;
  bool operator==(const RankInfo&) const = default;
};

struct TrackInfo {
  int32_t id = 0;  // dense, 0-based, assigned by the writer
  int32_t rank = 0;
  TrackKind kind = TrackKind::HostThread;
  std::string name;   // "rank 3 host", "stream 7", "tokens/expert"
  int32_t order = 0;  // position among the rank's tracks
  int32_t device = kNone;
  int64_t stream = kNone;
  bool operator==(const TrackInfo&) const = default;
};

// One span as written. Names are interned in the run's string table (RunWriter::intern).
struct SpanRecord {
  int32_t track = 0;
  int64_t start = 0, end = 0;
  uint32_t name = 0;
  Category category = Category::ComputeAttention;
  Phase phase = Phase::None;
  int32_t step = kNone, microbatch = kNone, layer = kNone, expert = kNone;
  int64_t bytes = 0;      // communication payload; 0 for computation
  int32_t chunk = kNone;  // the stage's model chunk of an interleaved schedule's pass
  // The communication call a comm.* or wait span belongs to, so the same call is matched across its
  // members: its communicator (the same id on every member), its sequence number there (collectives
  // counted per communicator, sends and receives per peer and direction), and the peer: the other end
  // of a send or receive, or, on a wait span, the rank waited for (the last to arrive).
  int32_t comm = kNone, seq = kNone, peer = kNone;
  bool operator==(const SpanRecord&) const = default;
};

// A kernel's launch, from CUPTI's kernel record; all 0 for copies and memsets, and in files written
// before schema version 2.
struct KernelLaunch {
  int32_t grid_x = 0, grid_y = 0, grid_z = 0;
  int32_t block_x = 0, block_y = 0, block_z = 0;
  int32_t registers = 0;                          // per thread
  int32_t shared_static = 0, shared_dynamic = 0;  // bytes per block
  bool operator==(const KernelLaunch&) const = default;
};

// A CUPTI record: kernel, memcpy or memset, tied to the span that launched it (kNone if none).
struct GpuActivityRecord {
  int32_t track = 0;  // the GPU stream's track
  int64_t start = 0, end = 0;
  uint32_t name = 0;
  GpuActivityKind kind = GpuActivityKind::Kernel;
  int32_t device = 0;
  int64_t stream = 0;
  int64_t correlation = 0;
  int64_t span = kNone;  // span id (row id in the span table, 0-based in write order) or kNone
  int64_t bytes = 0;     // memcpy/memset size
  KernelLaunch launch;
  bool operator==(const GpuActivityRecord&) const = default;
};

struct CounterSample {
  int32_t track = 0;
  int64_t time = 0;
  double value = 0;
  bool operator==(const CounterSample&) const = default;
};

// The run's meta key that says where its completed steps are listed. A run whose meta holds
// kMetaStepsRecorded = kStepsInStepMetric (every run moescope-cli train writes) lists every step it
// completed in step_metric; spans of any other step belong to a step cut short (a cancelled, failed or
// killed run) and the analysis leaves them out. Without it (imports, generated runs) every step counts.
inline constexpr std::string_view kMetaStepsRecorded = "steps.recorded";
inline constexpr std::string_view kStepsInStepMetric = "step_metric";

struct StepMetric {
  int32_t step = 0;
  double loss = 0, ce_loss = 0, aux_loss = 0;
  int64_t tokens = 0;
  double step_ms = 0, tokens_per_s = 0;
  int64_t start_ns = 0, end_ns = 0;  // the step's extent on the run clock
  // The most device memory one rank's allocations held at once from the run's start to this step's end
  // (the engine's own count, engine/backend.h peakMemoryBytes); 0: not counted (a CPU run, an import),
  // NULL in the file.
  int64_t peak_memory_bytes = 0;
  bool operator==(const StepMetric&) const = default;
};

// How one routing group (the tokens of one micro-batch on one data-parallel replica, MODEL.md) was
// routed at one MoE layer in one step: its assignments (tokens x top_k), those kept per expert, and
// those dropped by the capacity limit. Every assignment is kept or dropped: the kept sum to
// assignments - dropped.
struct MoeRouting {
  int32_t step = 0, microbatch = 0, layer = 0;
  int32_t replica = 0;  // the data-parallel rank whose micro-batch this is
  int64_t assignments = 0, dropped = 0;
  std::vector<int64_t> kept;  // per expert, [E]
  bool operator==(const MoeRouting&) const = default;
};

// Where a MoE layer's ranks meet once their experts are done (the engine's span names; the MoE
// analysis finds the layer's waits by them): PPMoE's tensor-parallel all-reduce (forward and backward),
// DPMoE's all-to-alls that return the experts' outputs (forward) and input gradients (backward).
inline constexpr std::string_view kMoeAllreduceSpan = "moe_allreduce";
inline constexpr std::string_view kMoeReturnSpan = "return";
inline constexpr std::string_view kMoeReturnGradSpan = "return_grad";

}  // namespace moescope::storage
