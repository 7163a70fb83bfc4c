#include "base/run_tasks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace moescope {
namespace {

TEST(RunTasks, RunsEveryTaskOnceAtTheSameTime) {
  for (int n : {0, 1, 4}) {
    std::vector<std::atomic<int>> ran(static_cast<size_t>(n));
    std::atomic<int> waiting{0};
    runTasks(n, [&](int i) {
      ++ran[static_cast<size_t>(i)];
      // Every task waits for all the others: this only ends if they run at once.
      ++waiting;
      while (waiting.load() < n) std::this_thread::yield();
    });
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(ran[static_cast<size_t>(i)].load(), 1) << "task " << i << " of " << n;
  }
}

TEST(RunTasks, TaskZeroRunsOnTheCallingThread) {
  std::thread::id zero;
  runTasks(3, [&](int i) {
    if (i == 0) zero = std::this_thread::get_id();
  });
  EXPECT_EQ(zero, std::this_thread::get_id());
}

// The first error reaches the caller once every task has ended; onFailure lets the others stop.
TEST(RunTasks, RethrowsTheFirstErrorAfterEveryTaskEnded) {
  std::atomic<bool> stop{false};
  std::atomic<int> ended{0}, failures{0};
  try {
    runTasks(
        4,
        [&](int i) {
          if (i == 2) throw std::runtime_error("task 2 failed");
          while (!stop.load()) std::this_thread::yield();  // a peer waiting for the failed one
          ++ended;
          if (i == 3) throw std::logic_error("task 3 stopped after the failure");
        },
        [&] {
          ++failures;
          stop.store(true);
        });
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "task 2 failed");
  }
  EXPECT_EQ(ended.load(), 3);
  EXPECT_EQ(failures.load(), 1);
}

TEST(RunTasks, WithoutFailureCallsNoCallback) {
  int calls = 0;
  runTasks(
      3, [](int) {}, [&] { ++calls; });
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace moescope
