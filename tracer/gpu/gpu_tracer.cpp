#include "tracer/gpu/gpu_tracer.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>
#include <utility>

#include "tracer/gpu/cupti_check.h"
#include "tracer/gpu/nvtx_ranges.h"

namespace moescope::tracer::gpu {
namespace {

void openWithNvtx(uint64_t id, std::string_view name, Category category) {
  nvtxPush(name, category);
  CuptiCollector::pushSpan(id);
}
void closeWithNvtx() {
  CuptiCollector::popSpan();
  nvtxPop();
}
void openOnly(uint64_t id, std::string_view, Category) {
  CuptiCollector::pushSpan(id);
}
void closeOnly() {
  CuptiCollector::popSpan();
}

constexpr SpanHooks kWithNvtx{openWithNvtx, closeWithNvtx};
constexpr SpanHooks kCuptiOnly{openOnly, closeOnly};

}  // namespace

std::unique_ptr<GpuTracer> GpuTracer::start(Tracer& tracer, const GpuTracerOptions& options) {
  CollectorOptions collect;
  collect.bufferBytes = options.bufferBytes;
  collect.correlation = options.correlation;
  collect.flush = options.flush;
  collect.flushPeriodMs = static_cast<uint32_t>(options.drainPeriod.count());
  auto collector = CuptiCollector::start(collect);
  tracer.linkGpuActivity();
  tracer.setMeta("cupti.correlation", correlationName(options.correlation));
  tracer.setMeta("cupti.nvtx", options.nvtx ? "on" : "off");
  tracer.setMeta("cupti.flush", flushName(options.flush));
  auto self = std::unique_ptr<GpuTracer>(new GpuTracer(tracer, std::move(collector), options));
  setSpanHooks(options.nvtx ? &kWithNvtx : &kCuptiOnly);
  self->thread_ = std::thread([t = self.get()] { t->drainLoop(); });
  return self;
}

GpuTracer::GpuTracer(Tracer& tracer, std::unique_ptr<CuptiCollector> collector,
                     const GpuTracerOptions& options)
    : tracer_(tracer), collector_(std::move(collector)), options_(options) {}

GpuTracer::~GpuTracer() {
  try {
    finish();
  } catch (const std::exception&) {
    // A destructor must not throw; the records handed over so far stay.
  }
}

uint64_t GpuTracer::droppedRecords() const {
  return collector_ ? collector_->droppedRecords() : 0;
}

void GpuTracer::drainLoop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wakeup_.wait_for(lock, options_.drainPeriod, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    try {
      const int64_t t0 = nowNs();
      auto records = collector_->drain(/*final=*/false);
      drainMaxNs_ = std::max(drainMaxNs_, nowNs() - t0);
      handed_ += static_cast<int64_t>(records.size());
      if (!records.empty()) tracer_.gpuActivity(std::move(records));
    } catch (const std::exception& e) {
      tracer_.setMeta("cupti.error", e.what());
    }
    lock.lock();
  }
}

void GpuTracer::finish() {
  {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    stop_ = true;
  }
  wakeup_.notify_one();
  if (thread_.joinable()) thread_.join();
  setSpanHooks(nullptr);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) == cudaSuccess) {
    int current = 0;
    cudaGetDevice(&current);
    for (int d = 0; d < devices; ++d) {
      if (cudaSetDevice(d) == cudaSuccess) cudaDeviceSynchronize();
    }
    cudaSetDevice(current);
  }
  auto records = collector_->drain(/*final=*/true);
  handed_ += static_cast<int64_t>(records.size());
  if (!records.empty()) tracer_.gpuActivity(std::move(records));
  tracer_.setMeta("cupti.dropped_records", std::to_string(collector_->droppedRecords()));
  tracer_.setMeta("cupti.records", std::to_string(handed_));
  tracer_.setMeta("cupti.drain_ms_max", std::to_string(static_cast<double>(drainMaxNs_) / 1e6));
  if (collector_->correlation() == Correlation::Callbacks)
    tracer_.setMeta("cupti.unmatched_records", std::to_string(collector_->unmatchedRecords()));
  collector_.reset();
}

}  // namespace moescope::tracer::gpu
