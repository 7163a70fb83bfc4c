// How the simulation shares a CPU host's cores among the rank threads (docs/PLANNER.md, "Host cores").
//
// The CPU backend's ranks are threads on one host. When no more of them are runnable than there are
// cores, each runs at its solo speed (min(1, cores / running) of it when the cores are fractional:
// other programs took the rest). When more are runnable, two models:
//
// - Processor sharing (slice 0): every runnable thread runs at cores / runnable of its solo speed, all
//   the time, as if the cores were divided infinitely finely.
// - Time slices (slice Q > 0), the Linux scheduler to first order: ceil(cores) cores, each with its
//   own queue of threads that take slices of Q in turn (a core's thread gives the core to the head of
//   its queue when its slice ends, and goes to the back). A woken thread (its next pass can start)
//   takes an idle core if there is one; else it takes the core of the thread that woke it (the sender
//   whose message it waited for: wake-up preemption on the waker's core), and the waker waits in that
//   core's queue with its send unfinished; else it queues on the core it last ran on. A core left
//   with an empty queue pulls the head of the longest other queue. The threads then do not share the
//   cores evenly from moment to moment: a core can run one thread alone while the other takes turns
//   among three, and a pass on the pipeline's critical path is slowed or stalled by as much.
//
// Measured (docs/PLANNER.md): in real pp 4 runs on 2 cores, 54 of 55 sends that took over 1 ms had
// posted their message before the delay (the receiver was not held up; the sender lost its core to the
// receiver it woke), and the delays' median was 3.2 to 4.2 ms, one tick of a 250 Hz kernel. One queue
// for all cores (every runnable thread taking turns evenly) moved the pp 4 bubbles by 1 to 2 points of
// the 7 processor sharing missed; per-core queues account for most of them.
//
// A stage of tp x dp ranks is as many threads, woken and blocked together; the stage's pass advances
// at the mean speed of its threads (their collectives are inside the pass: pass_plan.h).
#pragma once

#include <deque>
#include <vector>

namespace moescope::planner {

struct HostShare {
  double cores = 0;     // effective cores the ranks share; 0: a core (a device) per rank
  double slice_ns = 0;  // the scheduler's time slice; 0: processor sharing
  bool operator==(const HostShare&) const = default;
};

class HostScheduler {
 public:
  HostScheduler(HostShare share, int stages, int threads_per_stage);

  // The stage's threads have a pass to run from `now` (a wake-up; waker: the stage whose pass ending
  // now made it ready, -1 for none). Returns the waker when its threads lost their cores to the woken
  // ones (time slices only), else -1. Waking a runnable stage changes nothing.
  int wake(int stage, double now, int waker = -1);
  // The stage's threads have nothing to run (they block in a receive or a collective).
  void block(int stage, double now);
  bool runnable(int stage) const;

  // The part of its solo speed the stage's pass runs at now (0 while all its threads wait for a core).
  double speed(int stage) const;

  // When the threads holding the cores change by themselves next (a slice ends while a thread waits
  // on that core); +infinity when nothing would change.
  double nextChange() const;
  // Applies every change due at `now`: each slice that ended with a thread waiting passes its core on.
  void advance(double now);

 private:
  enum class State : unsigned char { Blocked, Queued, Running };
  bool sliced() const { return share_.cores > 0 && share_.slice_ns > 0; }
  void start(int core, int thread, double now);
  void pull(int core, double now);
  void queue(int core, int thread, double now);

  HostShare share_;
  int per_stage_ = 1;
  std::vector<State> state_;
  std::vector<int> core_;  // the core a thread runs or waits on, or last ran on; -1 before its first
  int running_ = 0, runnable_ = 0;
  // Time slices: each core's running thread (-1: idle), queue and the end of the running slice.
  std::vector<int> on_;
  std::vector<std::deque<int>> queue_;
  std::vector<double> slice_end_;
};

}  // namespace moescope::planner
