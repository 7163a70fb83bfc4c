// MPI for a run over several processes: starts MPI (with MPI_THREAD_MULTIPLE, since every rank thread
// of a process communicates on its own), and the few process-level exchanges a run needs before and
// after its steps: agreeing on input, broadcasting the run's id, gathering the trained weights on
// process 0. The ranks' own communication is MpiWorld's (engine/mpi_communicator.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint.h"

namespace moescope::engine {

class MpiRuntime {
 public:
  // MPI_Init_thread. Throws InputError (one line) when MPI does not start or lacks thread support.
  static std::unique_ptr<MpiRuntime> start();
  // MPI_Finalize.
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int process() const { return process_; }
  int processes() const { return processes_; }
  const std::string& host() const { return host_; }

  void barrier() const;
  // process 0's text on every process.
  std::string broadcast(const std::string& text) const;
  // Every process's text, in process order.
  std::vector<std::string> allGather(const std::string& text) const;
  // Every rank's trained weights on process 0: each process has written its ranks' shards into
  // `weights` (StageExecutor::storeWeights) over NaN elsewhere; process 0 ends with every element
  // from the process that wrote it. Other processes' weights are left as they were.
  void gatherWeights(ModelWeights& weights) const;
  // A message of bytes to or from one other process, on a communicator apart from the ranks' own
  // messages (NCCL's unique ids travel this way). tag: any number both sides compute alike; messages of
  // one tag between two processes arrive in order. recvBytes fills exactly bytes.size() bytes.
  void sendBytes(int to, uint64_t tag, const std::vector<std::byte>& bytes) const;
  void recvBytes(int from, uint64_t tag, std::vector<std::byte>& bytes) const;
  // Ends every process of the job (MPI_Abort) with this exit code.
  [[noreturn]] void abort(int code) const;

 private:
  MpiRuntime();
  int tag(uint64_t any) const;
  struct Channel;  // the communicator of sendBytes (keeps mpi.h out of this header)
  std::unique_ptr<Channel> channel_;
  int process_ = 0, processes_ = 1, tag_limit_ = 32767;
  std::string host_;
};

}  // namespace moescope::engine
