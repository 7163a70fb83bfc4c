// The CUDA backend's communicator: ranks are threads of one process, one GPU each, communicating with
// NCCL. An NcclWorld holds the shared state of every group (NCCL unique ids, the hosts' arrival times
// that wait spans are computed from); each rank takes its own NcclCommunicator per group, which owns
// that member's NCCL communicators (one for collectives, and for point-to-point one per direction:
// messages to a higher member index and to a lower one, so that a pipeline's activations and gradients,
// flowing in opposite directions, never queue behind each other).
//
// Buffers are device pointers of the member's GPU. Collectives and receives are enqueued on the stream
// set with setStream (the executor's compute stream), so they are ordered with the computation without
// a host wait; sends go on a stream of their own, after the compute stream's work so far, so a stage
// never stalls its computation on a peer that is not ready to receive (the send buffer must stay
// unchanged until the step ends). All-to-all is a group of ncclSend/ncclRecv with per-peer counts.
//
// Tracing: with a recorder set, each call first waits for the compute stream (so the span starts when
// the data is ready), then for the transfer; a collective's `wait` span runs from this member's arrival
// to the last member's arrival (the hosts share one clock), a receive's from its start to the moment the
// sender posted. Without a recorder nothing waits on the host. NCCL_NVLS_ENABLE is set to 0 (NVLink
// multicast off) unless the environment sets it.
//
// Over several processes (mpirun, srun) each process runs some of the ranks; a group's NCCL unique ids
// are made by the process that runs its first member and carried to the others through NcclProcesses
// (MPI, engine/mpi_runtime.h). Host-timed wait spans then see only the arrivals of the process's own
// members: the GPU tracer's kernel times are the cross-process truth.
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/communicator.h"

namespace moescope::engine::cuda {

class NcclError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Sets NCCL_NVLS_ENABLE=0 unless it is set already; call before any NCCL call (NcclWorld does).
void configureNcclEnvironment();

// How a run over several processes reaches the other processes: which process runs a rank, and a
// message of bytes to or from another process, tagged by a number both sides compute alike. Empty
// functions: one process runs every rank.
struct NcclProcesses {
  int process = 0;  // this one
  std::function<int(int rank)> process_of;
  std::function<void(int to, uint64_t tag, const std::vector<std::byte>& bytes)> send;
  std::function<void(int from, uint64_t tag, std::vector<std::byte>& bytes)> recv;  // fills bytes.size()
  bool spread() const { return static_cast<bool>(process_of); }
};

class NcclWorld final : public CommWorld {
 public:
  // Global rank r runs on GPU devices[r] (any value for ranks of other processes).
  explicit NcclWorld(std::vector<int> devices, NcclProcesses processes = {});
  ~NcclWorld() override;
  NcclWorld(const NcclWorld&) = delete;
  NcclWorld& operator=(const NcclWorld&) = delete;

  int size() const { return static_cast<int>(devices_.size()); }
  int device(int rank) const { return devices_[static_cast<size_t>(rank)]; }
  // Makes rank's GPU current on the calling thread, then returns its handle in the group (collective
  // over the group's members the first time each asks for it: NCCL's communicator init).
  std::unique_ptr<Communicator> communicator(int rank, const std::vector<int>& group) override;
  void abort(const std::string& reason) override;
  bool aborted() const { return aborted_.load(); }

  // Waits on the host until the stream's work is done; throws Cancelled once the world is aborted, and
  // the CUDA error of a failed stream.
  void synchronize(cudaStream_t stream) const;

  struct Group;
  struct Member;

 private:
  // The group's NCCL unique ids, made here or received from the process of its first member; under
  // the group's mutex.
  void shareIds(Group& g);

  std::vector<int> devices_;
  NcclProcesses processes_;
  std::mutex mutex_;
  std::map<std::vector<int>, std::shared_ptr<Group>> groups_;
  std::atomic<bool> aborted_{false};
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<NcclWorld::Group> group, std::shared_ptr<NcclWorld::Member> member,
                   NcclWorld* world, int index);
  ~NcclCommunicator() override;

  int rank() const override { return index_; }
  int size() const override;
  void setRecorder(tracer::TrackRecorder* recorder) override { recorder_ = recorder; }
  // The stream collectives and receives are ordered on (default: the legacy default stream).
  void setStream(cudaStream_t stream) { stream_ = stream; }
  NcclWorld* world() const { return world_; }

  using Communicator::allReduceSum;
  using Communicator::allToAll;
  using Communicator::recv;
  using Communicator::send;
  void allReduceSum(std::span<const CommBuffer> parts, const CommSpan& span) override;
  void allToAll(const void* send, const size_t* sendCounts, void* recv, const size_t* recvCounts, DType type,
                const CommSpan& span) override;
  void send(const void* buf, size_t count, DType type, int peer, const CommSpan& span) override;
  void recv(void* buf, size_t count, DType type, int peer, const CommSpan& span) override;
  void barrier(const CommSpan& span) override;

  // Ends this member's NCCL communicators at once (ncclCommAbort), so that its kernels waiting on a
  // peer stop: for an executor failing or cancelled with NCCL work in flight.
  void abortNow();

 private:
  bool hostTimed() const;  // tracing without the GPU tracer: spans wait for the stream
  int64_t arrive();        // tracing: posts this member's arrival (after its stream, if host-timed)
  void finishCollective(const CommSpan& span, int64_t arrival, int64_t bytes, uint64_t id);
  int32_t rankOf(int member) const;
  // Opens the span's id for the work launched until closeLaunch() (the GPU tracer ties its kernels to it).
  uint64_t openLaunch(const CommSpan& span) {
    return recorder_ ? recorder_->open(span.name, span.attrs.category) : 0;
  }
  void closeLaunch() {
    if (recorder_) recorder_->close();
  }
  void checkPeer(int peer) const;

  std::shared_ptr<NcclWorld::Group> g_;
  std::shared_ptr<NcclWorld::Member> m_;
  NcclWorld* world_;
  int index_;
  cudaStream_t stream_ = nullptr;
  tracer::TrackRecorder* recorder_ = nullptr;
  uint64_t sequence_ = 0;  // collectives so far (every member counts alike)
  CallCounter calls_;      // each call's identity in the run file (communicator, sequence, peer)
};

}  // namespace moescope::engine::cuda
