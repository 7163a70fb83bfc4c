#include "tracer/inject/process_recorder.h"

#include <unistd.h>

#include <unordered_map>

#include "tracer/span.h"

namespace moescope::tracer::inject {

namespace {
// Looks names up by string_view without building a std::string per push.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
}  // namespace

// A thread's events in chunks of kChunkEvents, each reserved once: an append never moves what the thread
// recorded before (a single vector doubling at a million events would copy 40 MB on the program's thread).
constexpr size_t kChunkEvents = size_t{1} << 14;

struct ProcessRecorder::ThreadBuffer {
  std::mutex mutex;  // taken by its thread at each event and by take() once, at the end
  std::vector<std::vector<storage::RecordEvent>> chunks;
  std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>> names;  // this thread's name ids
};

namespace {
thread_local int64_t t_thread = 0;
}

int64_t currentThread() {
  if (t_thread == 0) t_thread = static_cast<int64_t>(::gettid());
  return t_thread;
}

ProcessRecorder::ProcessRecorder() : domains_{"nvtx"}, start_(nowNs()) {}

uint32_t ProcessRecorder::domain(std::string_view name) {
  std::lock_guard lock(mutex_);
  for (uint32_t d = 0; d < domains_.size(); ++d) {
    if (domains_[d] == name) return d;
  }
  domains_.emplace_back(name);
  return static_cast<uint32_t>(domains_.size() - 1);
}

uint32_t ProcessRecorder::name(std::string_view text) {
  ThreadBuffer& b = thread();
  // The cache is the thread's own: no lock but on a name's first use by the thread.
  if (auto it = b.names.find(text); it != b.names.end()) return it->second;
  uint32_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = names_.intern(text);
  }
  b.names.emplace(std::string(text), id);
  return id;
}

ProcessRecorder::ThreadBuffer& ProcessRecorder::thread() {
  // One buffer per thread and recorder; a process has one recorder.
  thread_local ThreadBuffer* buffer = nullptr;
  if (!buffer) {
    buffer = new ThreadBuffer;
    std::lock_guard lock(mutex_);
    buffers_.push_back(buffer);
  }
  return *buffer;
}

void ProcessRecorder::append(const storage::RecordEvent& e) {
  if (taken_.load(std::memory_order_relaxed)) return;
  ThreadBuffer& b = thread();
  std::lock_guard lock(b.mutex);
  if (b.chunks.empty() || b.chunks.back().size() == kChunkEvents)
    b.chunks.emplace_back().reserve(kChunkEvents);
  b.chunks.back().push_back(e);
}

void ProcessRecorder::push(uint32_t domain, uint32_t name) {
  append({storage::RecordEventKind::Push, nowNs(), currentThread(), name, domain, 0});
}

void ProcessRecorder::pop(uint32_t domain) {
  append({storage::RecordEventKind::Pop, nowNs(), currentThread(), 0, domain, 0});
}

uint64_t ProcessRecorder::start(uint32_t domain, uint32_t name) {
  const uint64_t id = nextRange_.fetch_add(1, std::memory_order_relaxed);
  append({storage::RecordEventKind::Start, nowNs(), currentThread(), name, domain, id});
  return id;
}

void ProcessRecorder::end(uint64_t id) {
  append({storage::RecordEventKind::End, nowNs(), currentThread(), 0, 0, id});
}

void ProcessRecorder::mark(uint32_t domain, uint32_t name) {
  append({storage::RecordEventKind::Mark, nowNs(), currentThread(), name, domain, 0});
}

void ProcessRecorder::nameThread(int64_t thread, std::string name) {
  std::lock_guard lock(mutex_);
  threadNames_[thread] = std::move(name);
}

void ProcessRecorder::gpu(std::vector<storage::RecordGpu> records) {
  std::lock_guard lock(mutex_);
  gpu_.insert(gpu_.end(), records.begin(), records.end());
}

void ProcessRecorder::calls(std::vector<storage::RecordCall> calls) {
  std::lock_guard lock(mutex_);
  calls_.insert(calls_.end(), calls.begin(), calls.end());
}

storage::RecordStream ProcessRecorder::take() {
  storage::RecordStream s;
  if (taken_.exchange(true)) return s;
  std::lock_guard lock(mutex_);
  s.names = std::move(names_);
  s.domains = domains_;
  for (ThreadBuffer* b : buffers_) {
    std::lock_guard bufferLock(b->mutex);
    for (const auto& chunk : b->chunks) s.events.insert(s.events.end(), chunk.begin(), chunk.end());
    b->chunks.clear();
  }
  s.gpu = std::move(gpu_);
  s.calls = std::move(calls_);
  s.threadNames = threadNames_;
  s.pid = static_cast<int64_t>(::getpid());
  s.start_ns = start_;
  s.end_ns = nowNs();
  return s;
}

}  // namespace moescope::tracer::inject
