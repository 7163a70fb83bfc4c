// The CUDA side of the injection library: the driver loads the library named in CUDA_INJECTION64_PATH
// in cuInit and calls its InitializeInjection; the library starts the tracer's CUPTI collector
// (tracer/gpu/cupti_collector.h) with launch calls kept, and a thread that hands CUPTI's records to
// the store every 200 ms, so CUPTI's buffers are given back while the program runs.
//
// What runs on the program's threads at each launch is what the overhead is made of (a launch-bound
// PyTorch job makes ~1,000 launches a step; docs/bench-record.md). So the collector runs without span
// correlation (a recorded program has no moescope spans: no callback for it), and launch calls come by
// default from CUPTI's API activity records of the launching calls only, written by CUPTI into its
// per-thread buffer with no code of ours on the launching thread (`record --launch-calls callbacks`
// keeps the callback way, to compare; `off` keeps none). Buffers are 16 MiB and reused: a kernel record
// is 216 bytes and a launch call's 40, so one holds ~60 steps of ~1,000 launches and CUPTI asks for
// a new one rarely.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tracer/gpu/cupti_collector.h"
#include "tracer/inject/session.h"

namespace moescope::tracer::inject {
namespace {

struct GpuRecording {
  std::unique_ptr<gpu::CuptiCollector> collector;
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  std::thread drainer;
  std::string error;  // CUPTI could not start
};
GpuRecording* g_gpu = nullptr;
std::mutex g_gpuMutex;

gpu::LaunchCalls launchCallsOf(LaunchCallRecording r) {
  switch (r) {
    case LaunchCallRecording::Callbacks:
      return gpu::LaunchCalls::Callbacks;
    case LaunchCallRecording::Off:
      return gpu::LaunchCalls::Off;
    case LaunchCallRecording::Activity:
      break;
  }
  return gpu::LaunchCalls::Activity;
}

void handOver(ProcessRecorder& r, gpu::CuptiCollector& c, bool final) {
  std::vector<gpu::GpuRecord> records = c.drain(final);
  std::vector<gpu::LaunchCall> launches = c.drainLaunchCalls();
  std::vector<storage::RecordGpu> out;
  out.reserve(records.size());
  for (const gpu::GpuRecord& g : records)
    out.push_back({g.kind, g.start, g.end, r.name(g.name), g.device, g.stream, g.correlation, g.bytes});
  r.gpu(std::move(out));
  std::vector<storage::RecordCall> calls;
  calls.reserve(launches.size());
  for (const gpu::LaunchCall& l : launches)
    calls.push_back({l.start, l.end, l.thread, r.name(l.name ? l.name : "launch"), l.correlation});
  r.calls(std::move(calls));
}

}  // namespace

void startGpuRecording(Session& s) {
  std::lock_guard lock(g_gpuMutex);
  if (g_gpu) return;
  g_gpu = new GpuRecording;  // lives until the process ends
  if (!s.settings.kernels) return;
  gpu::CollectorOptions options;
  options.bufferBytes = size_t{16} << 20;
  options.spans = false;
  options.launchCalls = launchCallsOf(s.settings.launchCalls);
  try {
    try {
      g_gpu->collector = gpu::CuptiCollector::start(options);
    } catch (const gpu::LaunchCallRecordsRefused& e) {
      // A CUPTI that refuses API records one by one: launch calls through callbacks instead.
      say(std::string("launch calls through callbacks in process ") + std::to_string(::getpid()) + " (" +
          e.what() + ")");
      options.launchCalls = gpu::LaunchCalls::Callbacks;
      g_gpu->collector = gpu::CuptiCollector::start(options);
    }
  } catch (const std::exception& e) {
    g_gpu->error = e.what();
    say(std::string("GPU work is not recorded in process ") + std::to_string(::getpid()) + ": " + e.what());
    return;
  }
  g_gpu->drainer = std::thread([&s] {
    std::unique_lock lock(g_gpu->mutex);
    while (!g_gpu->stop) {
      g_gpu->wake.wait_for(lock, std::chrono::milliseconds(200), [] { return g_gpu->stop; });
      if (g_gpu->stop) break;
      lock.unlock();
      try {
        handOver(s.recorder, *g_gpu->collector, false);
      } catch (const std::exception& e) {
        g_gpu->error = e.what();
      }
      lock.lock();
    }
  });
}

std::string finishGpuRecording(Session& s, bool& recorded, uint64_t& dropped) {
  std::lock_guard lock(g_gpuMutex);
  if (!g_gpu) return "CUDA was not initialised in this process (no GPU, or none used)";
  if (!g_gpu->collector) return s.settings.kernels ? "CUPTI: " + g_gpu->error : "off (--no-kernels)";
  {
    std::lock_guard stopLock(g_gpu->mutex);
    g_gpu->stop = true;
  }
  g_gpu->wake.notify_all();
  if (g_gpu->drainer.joinable()) g_gpu->drainer.join();
  try {
    // Forced: also the buffers of work still running. The program's CUDA runtime is not ours to call
    // at exit, so the devices are not synchronised first; a program that ends normally has waited for
    // its work already.
    handOver(s.recorder, *g_gpu->collector, true);
  } catch (const std::exception& e) {
    say(std::string("the last GPU records of process ") + std::to_string(::getpid()) +
        " were lost: " + e.what());
  }
  recorded = true;
  dropped = g_gpu->collector->droppedRecords();
  return "";
}

}  // namespace moescope::tracer::inject

extern "C" __attribute__((visibility("default"))) int InitializeInjection() {
  using namespace moescope::tracer::inject;
  if (Session* s = session()) startGpuRecording(*s);
  return 1;
}
