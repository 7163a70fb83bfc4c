#include "tracer/tracer.h"

#include <cstdint>
#include <iterator>
#include <utility>

#include "storage/run_writer.h"
#include "storage/storage_error.h"

namespace moescope::tracer {

// A fixed-size block of spans written by one recording thread and read by the flush thread. The
// writer fills slots in order and publishes the count with release order; the reader reads the slots
// below the count it loads with acquire order. A full chunk links its successor and is never touched
// by the writer again, so the reader may free it once it has read it.
struct TrackRecorder::Chunk {
  static constexpr uint32_t kCapacity = 1024;
  struct Slot {
    const char* name;
    uint32_t nameLength;
    Category category;
    Phase phase;
    int8_t chunk;  // in the padding after phase; kNone beyond int8
    int32_t step, microbatch, layer, expert;
    int64_t start, end, bytes;
    uint64_t id;
    int32_t comm, seq, peer;  // the communication call; kNone on computation
  };
  // 76 bytes: a little over a cache line since spans carry their communication call (bench_tracer
  // measures the record cost, docs/BENCHMARKS.md).
  static_assert(sizeof(Slot) <= 80, "a buffered span should stay near one cache line");

  std::atomic<uint32_t> count{0};
  std::atomic<Chunk*> next{nullptr};
  Slot slots[kCapacity];
};

TrackRecorder::TrackRecorder(Tracer* tracer, int32_t track)
    : tracer_(tracer), track_(track), idBase_(static_cast<uint64_t>(track + 1) << kSpanSeqBits) {
  tracer_->liveChunks_.fetch_add(1, std::memory_order_relaxed);  // the first chunk is always granted
  current_ = head_ = new Chunk;
}

TrackRecorder::~TrackRecorder() {
  for (Chunk* c = head_; c != nullptr;) {
    Chunk* next = c->next.load(std::memory_order_acquire);
    delete c;
    c = next;
  }
}

TrackRecorder::Chunk* TrackRecorder::grow() {
  if (!tracer_->reserveChunk()) return nullptr;
  auto* fresh = new Chunk;
  current_->next.store(fresh, std::memory_order_release);
  current_ = fresh;
  used_ = 0;
  return fresh;
}

void TrackRecorder::record(std::string_view name, const SpanAttrs& attrs, int64_t start, int64_t end,
                           uint64_t id) {
  if (id == 0) id = nextId();
  Chunk* chunk = used_ < Chunk::kCapacity ? current_ : grow();
  if (chunk == nullptr) {  // the buffer limit is reached: the flush thread is far behind
    tracer_->droppedSpans_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Chunk::Slot& s = chunk->slots[used_];
  s.name = name.data();
  s.nameLength = static_cast<uint32_t>(name.size());
  s.category = attrs.category;
  s.phase = attrs.phase;
  s.chunk = attrs.chunk >= 0 && attrs.chunk <= INT8_MAX ? static_cast<int8_t>(attrs.chunk) : int8_t{-1};
  s.step = attrs.step;
  s.microbatch = attrs.microbatch;
  s.layer = attrs.layer;
  s.expert = attrs.expert;
  s.start = start;
  s.end = end;
  s.bytes = attrs.bytes;
  s.id = id;
  s.comm = attrs.comm;
  s.seq = attrs.seq;
  s.peer = attrs.peer;
  chunk->count.store(++used_, std::memory_order_release);
}

void TrackRecorder::flush() {
  tracer_->wake();
}

namespace {
// The flush thread hands spans to the writer in batches of about this many.
constexpr size_t kSpansPerWrite = 4096;
// Span ids kept for GPU records that arrive after their span was written (linkGpuActivity): the most
// recent this many spans. CUPTI hands records over within a few buffers of their kernels, far fewer.
constexpr size_t kLinkedSpans = size_t{1} << 21;
// GPU records whose span has not been written yet wait at most this many; beyond, they are written
// without their span.
constexpr size_t kWaitingGpuRecords = size_t{1} << 20;

struct QueuedGpuRecord {
  int32_t track;
  GpuActivity record;
};
}  // namespace

struct Tracer::Pending {
  std::vector<storage::RankInfo> ranks;
  std::vector<storage::TrackInfo> tracks;
  std::vector<storage::CounterSample> counters;
  std::vector<storage::StepMetric> steps;
  std::vector<storage::MoeRouting> routing;
  std::vector<std::pair<std::string, std::string>> meta;
  std::vector<QueuedGpuRecord> gpu;
  // Flush thread only: span names by address, so a literal is hashed by content once.
  struct PtrHash {
    size_t operator()(const std::pair<const char*, uint32_t>& k) const {
      return std::hash<const void*>{}(k.first) ^ k.second;
    }
  };
  std::unordered_map<std::pair<const char*, uint32_t>, uint32_t, PtrHash> names;
  std::vector<storage::SpanRecord> spanBatch;
  std::vector<uint64_t> spanBatchIds;               // ids of spanBatch's spans (linkGpu_)
  std::unordered_map<uint64_t, int64_t> rowOfSpan;  // span id -> row id, the last kLinkedSpans spans
  std::deque<uint64_t> linkedOrder;                 // rowOfSpan's keys, oldest first
  std::vector<QueuedGpuRecord> waitingGpu;          // records whose span is not written yet
  std::unordered_map<std::string, uint32_t> gpuNames;
  std::vector<storage::GpuActivityRecord> gpuBatch;
};

std::unique_ptr<Tracer> Tracer::open(const std::filesystem::path& path, const storage::RunInfo& run) {
  return open(path, run, Options{});
}

std::unique_ptr<Tracer> Tracer::open(const std::filesystem::path& path, const storage::RunInfo& run,
                                     Options options) {
  storage::RunInfo info = run;
  if (info.start_ns == 0) info.start_ns = nowNs();
  info.status = storage::RunStatus::Running;
  auto tracer = std::unique_ptr<Tracer>(new Tracer(storage::RunWriter::create(path, info), options));
  tracer->thread_ = std::thread([t = tracer.get()] { t->flushLoop(); });
  return tracer;
}

Tracer::Tracer(std::unique_ptr<storage::RunWriter> writer, Options options)
    : writer_(std::move(writer)), options_(options), pending_(std::make_unique<Pending>()) {}

Tracer::~Tracer() {
  try {
    finish(storage::RunStatus::Failed, "the run ended without finishing its trace");
  } catch (const std::exception&) {
    // A destructor must not throw; what was committed stays in the file.
  }
}

void Tracer::addRank(const storage::RankInfo& rank) {
  std::lock_guard lock(mutex_);
  pending_->ranks.push_back(rank);
  if (rank.device != storage::kNone) rankOfDevice_.try_emplace(rank.device, rank.rank);
}

void Tracer::linkGpuActivity() {
  std::lock_guard lock(mutex_);
  linkGpu_ = true;
}

void Tracer::gpuActivity(std::vector<GpuActivity> records) {
  std::lock_guard lock(mutex_);
  for (GpuActivity& r : records) {
    auto [it, fresh] = streamTracks_.try_emplace({r.device, r.stream}, 0);
    if (fresh) {
      storage::TrackInfo info;
      info.id = nextTrack_++;
      const auto owner = rankOfDevice_.find(r.device);
      info.rank = owner != rankOfDevice_.end() ? owner->second : r.device;
      info.kind = storage::TrackKind::GpuStream;
      info.name = "GPU " + std::to_string(r.device) + " stream " + std::to_string(r.stream);
      info.order = tracksPerRank_[info.rank]++;
      info.device = r.device;
      info.stream = r.stream;
      pending_->tracks.push_back(std::move(info));
      it->second = nextTrack_ - 1;
    }
    pending_->gpu.push_back({it->second, std::move(r)});
  }
}

int64_t Tracer::gpuRecordsWritten() const {
  return gpuWritten_.load(std::memory_order_relaxed);
}

int64_t Tracer::gpuRecordsUnlinked() const {
  return gpuUnlinked_.load(std::memory_order_relaxed);
}

TrackRecorder* Tracer::hostTrack(int32_t rank, std::string name) {
  std::lock_guard lock(mutex_);
  storage::TrackInfo info;
  info.id = nextTrack_++;
  info.rank = rank;
  info.kind = storage::TrackKind::HostThread;
  info.name = std::move(name);
  info.order = tracksPerRank_[rank]++;
  pending_->tracks.push_back(std::move(info));
  recorders_.push_back(std::unique_ptr<TrackRecorder>(new TrackRecorder(this, nextTrack_ - 1)));
  return recorders_.back().get();
}

int32_t Tracer::counterTrack(int32_t rank, std::string name) {
  std::lock_guard lock(mutex_);
  storage::TrackInfo info;
  info.id = nextTrack_++;
  info.rank = rank;
  info.kind = storage::TrackKind::Counter;
  info.name = std::move(name);
  info.order = tracksPerRank_[rank]++;
  pending_->tracks.push_back(std::move(info));
  return nextTrack_ - 1;
}

void Tracer::stepMetric(const storage::StepMetric& metric) {
  std::lock_guard lock(mutex_);
  pending_->steps.push_back(metric);
}

void Tracer::counter(int32_t track, int64_t time, double value) {
  std::lock_guard lock(mutex_);
  pending_->counters.push_back({track, time, value});
}

void Tracer::moeRouting(std::vector<storage::MoeRouting> groups) {
  std::lock_guard lock(mutex_);
  auto& q = pending_->routing;
  q.insert(q.end(), std::make_move_iterator(groups.begin()), std::make_move_iterator(groups.end()));
}

void Tracer::setMeta(std::string key, std::string value) {
  std::lock_guard lock(mutex_);
  pending_->meta.emplace_back(std::move(key), std::move(value));
}

std::string_view Tracer::intern(std::string_view text) {
  std::lock_guard lock(mutex_);
  return *interned_.emplace(text).first;
}

int64_t Tracer::spansWritten() const {
  return spansWritten_.load(std::memory_order_relaxed);
}

bool Tracer::reserveChunk() {
  if (liveChunks_.fetch_add(1, std::memory_order_relaxed) < options_.maxBufferedChunks) return true;
  liveChunks_.fetch_sub(1, std::memory_order_relaxed);
  return false;
}

int64_t Tracer::droppedSpans() const {
  return droppedSpans_.load(std::memory_order_relaxed);
}

void Tracer::wake() {
  {
    std::lock_guard lock(mutex_);
    flushRequested_ = true;
  }
  wakeup_.notify_one();
}

void Tracer::flushLoop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wakeup_.wait_for(lock, options_.flushPeriod, [this] { return stop_ || flushRequested_; });
    if (stop_) break;
    flushRequested_ = false;
    lock.unlock();
    drain();
    lock.lock();
  }
}

void Tracer::drain() {
  // Take the queued rows and the list of recorders; the engine's threads go on meanwhile.
  Pending taken;
  size_t recorderCount = 0;
  bool link = false;
  {
    std::lock_guard lock(mutex_);
    if (!flushError_.empty()) return;
    std::swap(taken.ranks, pending_->ranks);
    std::swap(taken.tracks, pending_->tracks);
    std::swap(taken.counters, pending_->counters);
    std::swap(taken.steps, pending_->steps);
    std::swap(taken.routing, pending_->routing);
    std::swap(taken.meta, pending_->meta);
    std::swap(taken.gpu, pending_->gpu);
    link = linkGpu_;
    recorderCount = recorders_.size();  // recorders are only appended; the first ones never move
  }
  try {
    for (const auto& r : taken.ranks) writer_->addRank(r);
    for (const auto& t : taken.tracks) writer_->addTrack(t);  // ids match: both count from 0 in order
    auto& batch = pending_->spanBatch;
    auto& batchIds = pending_->spanBatchIds;
    auto writeBatch = [&] {
      const int64_t first = writer_->addSpans(batch);
      spansWritten_.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
      if (link) {
        auto& rows = pending_->rowOfSpan;
        auto& order = pending_->linkedOrder;
        for (size_t i = 0; i < batchIds.size(); ++i) {
          rows[batchIds[i]] = first + static_cast<int64_t>(i);
          order.push_back(batchIds[i]);
        }
        while (order.size() > kLinkedSpans) {
          rows.erase(order.front());
          order.pop_front();
        }
      }
      batch.clear();
      batchIds.clear();
    };
    for (size_t k = 0; k < recorderCount; ++k) {
      TrackRecorder* r;
      {
        std::lock_guard lock(mutex_);
        r = recorders_[k].get();
      }
      for (;;) {
        TrackRecorder::Chunk* c = r->head_;
        const uint32_t n = c->count.load(std::memory_order_acquire);
        for (uint32_t i = r->consumed_; i < n; ++i) {
          const auto& s = c->slots[i];
          auto [it, fresh] = pending_->names.try_emplace({s.name, s.nameLength}, 0u);
          if (fresh) it->second = writer_->intern(std::string_view(s.name, s.nameLength));
          batch.push_back({.track = r->track_,
                           .start = s.start,
                           .end = s.end,
                           .name = it->second,
                           .category = s.category,
                           .phase = s.phase,
                           .step = s.step,
                           .microbatch = s.microbatch,
                           .layer = s.layer,
                           .expert = s.expert,
                           .bytes = s.bytes,
                           .chunk = s.chunk,
                           .comm = s.comm,
                           .seq = s.seq,
                           .peer = s.peer});
          if (link) batchIds.push_back(s.id);
        }
        r->consumed_ = n;
        if (batch.size() >= kSpansPerWrite) writeBatch();
        if (n < TrackRecorder::Chunk::kCapacity) break;
        TrackRecorder::Chunk* next = c->next.load(std::memory_order_acquire);
        if (next == nullptr) break;
        delete c;
        liveChunks_.fetch_sub(1, std::memory_order_relaxed);
        r->head_ = next;
        r->consumed_ = 0;
      }
    }
    writeBatch();
    writeGpu(taken, false);
    writer_->addCounters(taken.counters);
    for (const auto& m : taken.steps) writer_->addStepMetric(m);
    writer_->addMoeRouting(taken.routing);
    for (const auto& [key, value] : taken.meta) writer_->setMeta(key, value);
    writer_->commit();
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    flushError_ = e.what();
  }
}

// Flush thread (or finish): writes the GPU records whose span is known (or all, when final), after
// the spans of the same drain, so a record's span id is known once its span has been written.
void Tracer::writeGpu(Pending& taken, bool final) {
  auto& queued = taken.gpu;
  auto& waiting = pending_->waitingGpu;
  std::vector<QueuedGpuRecord> stillWaiting;
  auto& out = pending_->gpuBatch;
  out.clear();
  auto write = [&](const QueuedGpuRecord& q, int64_t row) {
    const GpuActivity& r = q.record;
    auto [it, fresh] = pending_->gpuNames.try_emplace(r.name, 0u);
    if (fresh) it->second = writer_->intern(r.name);
    out.push_back({.track = q.track,
                   .start = r.start,
                   .end = r.end,
                   .name = it->second,
                   .kind = r.kind,
                   .device = r.device,
                   .stream = r.stream,
                   .correlation = r.correlation,
                   .span = row,
                   .bytes = r.bytes,
                   .launch = r.launch});
    if (r.span != 0 && row == storage::kNone) gpuUnlinked_.fetch_add(1, std::memory_order_relaxed);
  };
  auto place = [&](QueuedGpuRecord& q) {
    if (q.record.span == 0) return write(q, storage::kNone);
    const auto it = pending_->rowOfSpan.find(q.record.span);
    if (it != pending_->rowOfSpan.end()) return write(q, it->second);
    if (final || waiting.size() + stillWaiting.size() >= kWaitingGpuRecords) return write(q, storage::kNone);
    stillWaiting.push_back(std::move(q));
  };
  for (auto& q : waiting) place(q);
  for (auto& q : queued) place(q);
  waiting = std::move(stillWaiting);
  if (out.empty()) return;
  writer_->addGpuActivity(out);
  gpuWritten_.fetch_add(static_cast<int64_t>(out.size()), std::memory_order_relaxed);
  out.clear();
}

std::string Tracer::error() const {
  std::lock_guard lock(mutex_);
  return flushError_;
}

void Tracer::finish(storage::RunStatus status, std::string error) {
  {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    stop_ = true;
  }
  wakeup_.notify_one();
  if (thread_.joinable()) thread_.join();
  drain();
  std::string failure = this->error();
  if (failure.empty()) {
    try {
      Pending none;
      writeGpu(none, true);
      writer_->commit();
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  if (!failure.empty()) {
    // Give up what was not committed and mark the run failed with the write that failed; the writer
    // frees the disk space it held back for this.
    status = storage::RunStatus::Failed;
    error = failure;
    {
      std::lock_guard lock(mutex_);
      if (flushError_.empty()) flushError_ = failure;
    }
    writer_->recover();
  }
  std::string statusProblem;
  try {
    if (gpuWritten_.load() > 0) {
      writer_->setMeta("tracer.gpu_records", std::to_string(gpuWritten_.load()));
      writer_->setMeta("tracer.gpu_records_unlinked", std::to_string(gpuUnlinked_.load()));
    }
    if (const int64_t dropped = droppedSpans(); dropped > 0) {
      writer_->setMeta("tracer.dropped_spans", std::to_string(dropped));
    }
    writer_->setStatus(status, error, nowNs());
    writer_->commit();
  } catch (const std::exception& e) {
    statusProblem = e.what();
  }
  writer_.reset();  // closes the file; SQLite folds the WAL back into it
  if (!statusProblem.empty()) throw storage::StorageError(statusProblem);
}

}  // namespace moescope::tracer
