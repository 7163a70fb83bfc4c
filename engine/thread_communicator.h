// The CPU backend's communicator: ranks are threads of one process. A ThreadWorld holds the shared
// state of every group; each rank takes its own Communicator handle per group. Sums run in member order,
// so every member gets bit-identical results. abort() wakes every blocked member with Cancelled, so that
// one failing or cancelled rank stops the others instead of leaving them waiting.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/backend.h"
#include "engine/communicator.h"

namespace moescope::engine {

class ThreadWorld final : public CommWorld {
 public:
  explicit ThreadWorld(int size);
  ~ThreadWorld() override;
  ThreadWorld(const ThreadWorld&) = delete;
  ThreadWorld& operator=(const ThreadWorld&) = delete;

  int size() const { return size_; }
  // The handle of global rank `rank` in the group of the given global ranks (in group order); every
  // member asks with the same list. Thread-safe.
  std::unique_ptr<Communicator> communicator(int rank, const std::vector<int>& group) override;
  // Every blocked or later call of every group throws Cancelled(reason).
  void abort(const std::string& reason) override;
  bool aborted() const { return aborted_.load(); }

  struct Group;

 private:
  int size_;
  std::mutex mutex_;
  std::map<std::vector<int>, std::shared_ptr<Group>> groups_;
  std::atomic<bool> aborted_{false};
  std::string reason_;
};

}  // namespace moescope::engine
