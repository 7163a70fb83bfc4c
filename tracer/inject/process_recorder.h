// The injection library's store: what one recorded process's threads and its CUPTI drain hand in,
// kept until the shard is written (storage/record_stream.h is its shape). NVTX calls from any thread
// append to that thread's own buffer under its own mutex (taken by the writer only at the end), and
// intern names through a per-thread cache, so a push costs a hash of its name and a vector append.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "storage/record_stream.h"

namespace moescope::tracer::inject {

class ProcessRecorder {
 public:
  ProcessRecorder();

  // A domain's id (0: NVTX's default domain); domains live as long as the process.
  uint32_t domain(std::string_view name);
  // A name's id; thread-safe.
  uint32_t name(std::string_view text);

  void push(uint32_t domain, uint32_t name);
  void pop(uint32_t domain);
  uint64_t start(uint32_t domain, uint32_t name);  // returns the range's id, never 0
  void end(uint64_t id);
  void mark(uint32_t domain, uint32_t name);
  void nameThread(int64_t thread, std::string name);

  void gpu(std::vector<storage::RecordGpu> records);
  void calls(std::vector<storage::RecordCall> calls);

  // Stops taking events and hands everything over (once; later calls return an empty stream).
  storage::RecordStream take();

 private:
  struct ThreadBuffer;
  ThreadBuffer& thread();
  void append(const storage::RecordEvent& e);

  std::mutex mutex_;  // names_, domains_, buffers_, gpu_, calls_, threadNames_
  storage::NameTable names_;
  std::vector<std::string> domains_;
  std::vector<ThreadBuffer*> buffers_;  // leaked on purpose: threads may outlive the writing
  std::vector<storage::RecordGpu> gpu_;
  std::vector<storage::RecordCall> calls_;
  std::map<int64_t, std::string> threadNames_;
  std::atomic<uint64_t> nextRange_{1};
  std::atomic<bool> taken_{false};
  int64_t start_ = 0;
};

int64_t currentThread();  // the OS thread id (gettid), cached per thread

}  // namespace moescope::tracer::inject
