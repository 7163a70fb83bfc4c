#include "planner/host_scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moescope::planner {

namespace {
// Times are ns from the run's start (about 1e9 to 1e11): a thousandth of a ns is below their rounding.
constexpr double kEpsilonNs = 1e-3;
}  // namespace

HostScheduler::HostScheduler(HostShare share, int stages, int threads_per_stage)
    : share_(share),
      per_stage_(std::max(1, threads_per_stage)),
      state_(static_cast<size_t>(std::max(0, stages) * per_stage_), State::Blocked),
      core_(state_.size(), -1) {
  if (!sliced()) return;
  const auto cores = static_cast<size_t>(std::max(1, static_cast<int>(std::ceil(share.cores - 1e-9))));
  on_.assign(cores, -1);
  queue_.resize(cores);
  slice_end_.assign(cores, 0);
}

bool HostScheduler::runnable(int stage) const {
  return state_[static_cast<size_t>(stage * per_stage_)] != State::Blocked;
}

double HostScheduler::speed(int stage) const {
  int mine = 0;
  for (int q = 0; q < per_stage_; ++q)
    mine += state_[static_cast<size_t>(stage * per_stage_ + q)] == State::Running;
  if (mine == 0) return 0;
  const double sharing = sliced() ? running_ : runnable_;
  const double each = share_.cores > 0 && sharing > share_.cores ? share_.cores / sharing : 1.0;
  return each * mine / per_stage_;
}

void HostScheduler::start(int core, int thread, double now) {
  on_[static_cast<size_t>(core)] = thread;
  state_[static_cast<size_t>(thread)] = State::Running;
  core_[static_cast<size_t>(thread)] = core;
  slice_end_[static_cast<size_t>(core)] = now + share_.slice_ns;
  ++running_;
}

// Queues a thread on a core. When the queue forms, the running thread's slice, renewed while nobody
// waited, ends at its next multiple of the slice from when it took the core.
void HostScheduler::queue(int core, int thread, double now) {
  const auto k = static_cast<size_t>(core);
  double& end = slice_end_[k];
  if (queue_[k].empty() && end < now) end += std::ceil((now - end) / share_.slice_ns) * share_.slice_ns;
  state_[static_cast<size_t>(thread)] = State::Queued;
  core_[static_cast<size_t>(thread)] = core;
  queue_[k].push_back(thread);
}

// An idle core takes the head of its queue, or else of the longest other queue.
void HostScheduler::pull(int core, double now) {
  size_t from = static_cast<size_t>(core);
  if (queue_[from].empty()) {
    for (size_t j = 0; j < queue_.size(); ++j)
      if (queue_[j].size() > queue_[from].size()) from = j;
    if (queue_[from].empty()) return;
  }
  const int next = queue_[from].front();
  queue_[from].pop_front();
  start(core, next, now);
}

int HostScheduler::wake(int stage, double now, int waker) {
  int preempted = -1;
  for (int q = 0; q < per_stage_; ++q) {
    const int t = stage * per_stage_ + q;
    if (state_[static_cast<size_t>(t)] != State::Blocked) continue;
    ++runnable_;
    if (!sliced()) {
      state_[static_cast<size_t>(t)] = State::Running;
      ++running_;
      continue;
    }
    const int last = core_[static_cast<size_t>(t)];
    int idle = last >= 0 && on_[static_cast<size_t>(last)] < 0 ? last : -1;
    for (size_t k = 0; k < on_.size() && idle < 0; ++k)
      if (on_[k] < 0) idle = static_cast<int>(k);
    if (idle >= 0) {
      start(idle, t, now);
      continue;
    }
    const int w = waker >= 0 ? waker * per_stage_ + q : -1;
    if (w >= 0 && state_[static_cast<size_t>(w)] == State::Running) {
      const int core = core_[static_cast<size_t>(w)];
      --running_;
      queue(core, w, now);
      start(core, t, now);
      preempted = waker;
      continue;
    }
    int core = last;
    if (core < 0) {
      core = 0;
      for (size_t k = 1; k < queue_.size(); ++k)
        if (queue_[k].size() < queue_[static_cast<size_t>(core)].size()) core = static_cast<int>(k);
    }
    queue(core, t, now);
  }
  return preempted;
}

void HostScheduler::block(int stage, double now) {
  for (int q = 0; q < per_stage_; ++q) {
    const int t = stage * per_stage_ + q;
    State& s = state_[static_cast<size_t>(t)];
    if (s == State::Blocked) continue;
    --runnable_;
    if (s == State::Running) --running_;
    if (sliced()) {
      const int core = core_[static_cast<size_t>(t)];
      if (s == State::Running) {
        on_[static_cast<size_t>(core)] = -1;
        s = State::Blocked;
        pull(core, now);
      } else {
        auto& list = queue_[static_cast<size_t>(core)];
        list.erase(std::find(list.begin(), list.end(), t));
      }
    }
    s = State::Blocked;
  }
}

double HostScheduler::nextChange() const {
  double next = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < queue_.size(); ++k)
    if (!queue_[k].empty()) next = std::min(next, slice_end_[k]);
  return next;
}

void HostScheduler::advance(double now) {
  for (size_t k = 0; k < queue_.size(); ++k) {
    if (queue_[k].empty() || slice_end_[k] > now + kEpsilonNs) continue;
    const int done = on_[k];
    --running_;
    queue(static_cast<int>(k), done, now);
    on_[k] = -1;
    pull(static_cast<int>(k), now);
  }
}

}  // namespace moescope::planner
