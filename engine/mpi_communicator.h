// The CPU backend's communicator when the ranks are spread over processes: every process holds
// ranksPerProcess consecutive global ranks (process p: p × K .. p × K + K − 1) as threads, and every
// message between two ranks, in one process or two, is an MPI message tagged with (sender, receiver)
// and whether it belongs to the world group. Two ranks share at most the world group and one of their
// tp, dp or pp groups, and call each group's operations in the same order, so MPI's ordering of
// messages with one tag is enough to match them.
//
// Collectives are built from point-to-point messages: every member sends its input to every other
// member, and each sums all inputs in member order, as the thread communicator does, so results are
// bit-identical on every member and to a single-process run. The groups of a layout are small (tp, dp,
// pp ≤ 8 in practice) and CPU tensors a few MB, so n² messages cost less than a ring's 2(n−1) steps'
// latency here; the CUDA backend uses NCCL instead.
//
// Tracing splits each call as the thread communicator does: a `wait` span from this member's arrival
// to the last member's arrival (or, for a receive, to the moment the sender posted), then the transfer.
// Every message carries its sender's arrival time on process 0's clock (the clock offsets measured at
// the start, engine/mpi_clock.h), so members on other hosts compare arrivals on one clock.
//
// Blocked calls poll (MPI_Test) rather than block in MPI, so that abort() or the stop flag (SIGTERM
// from the launcher when another process died) ends them within a millisecond.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/communicator.h"

namespace moescope::engine {

class MpiWorld final : public CommWorld {
 public:
  // clockOffsets[p]: add to process p's clock to get process 0's. stop: when it turns true, blocked and
  // later calls throw Cancelled (nullptr: only abort() stops them).
  MpiWorld(int worldSize, int ranksPerProcess, std::vector<int64_t> clockOffsets,
           const std::atomic<bool>* stop = nullptr);
  ~MpiWorld() override;

  int size() const { return size_; }
  int ranksPerProcess() const { return perProcess_; }
  int processOf(int rank) const { return rank / perProcess_; }
  // Only for ranks of this process.
  std::unique_ptr<Communicator> communicator(int rank, const std::vector<int>& group) override;
  void abort(const std::string& reason) override;
  bool stopped() const;

  struct Shared;

 private:
  int size_, perProcess_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace moescope::engine
