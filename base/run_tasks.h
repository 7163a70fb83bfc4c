// Runs a few tasks at once and hands their first error to the caller: the rank threads of a training
// run, the generators of a stage's initial weights, the two halves of a run file's read. Written once so
// that every such place joins every thread, even when one fails or a thread cannot be started, and
// never loses or swallows an error.
#pragma once

#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moescope {

// Runs task(i) for i in [0, n) at once: task 0 on the calling thread, each other on a thread of its own.
// Returns when every task has ended; then rethrows the first exception a task threw (the later ones are
// dropped). onFailure (optional) is called once, at the first failure or when a thread cannot be
// started, so that tasks waiting on their peers can be stopped (e.g. by aborting their communicators).
inline void runTasks(int n, const std::function<void(int)>& task,
                     const std::function<void()>& onFailure = {}) {
  std::mutex mutex;
  std::exception_ptr first;
  auto fail = [&](std::exception_ptr error) {
    {
      std::lock_guard lock(mutex);
      if (first) return;
      first = std::move(error);
    }
    if (onFailure) onFailure();
  };
  auto guarded = [&](int i) {
    try {
      task(i);
    } catch (...) {
      fail(std::current_exception());
    }
  };
  std::vector<std::thread> threads;
  try {
    for (int i = 1; i < n; ++i) threads.emplace_back(guarded, i);
  } catch (...) {
    fail(std::current_exception());  // the tasks started so far are stopped, then joined
  }
  if (n > 0 && threads.size() + 1 == static_cast<size_t>(n)) guarded(0);
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace moescope
