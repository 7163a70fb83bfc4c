#include "engine/cuda/nccl_communicator.h"

#include <nccl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <thread>

#include "engine/cuda/cuda_check.h"
#include "engine/engine_error.h"

namespace moescope::engine::cuda {

namespace {

using tracer::nowNs;

constexpr size_t kArrivalRing = 8;

[[noreturn]] void throwNcclError(ncclResult_t result, ncclComm_t comm, const char* call) {
  std::string message = std::string("NCCL error in ") + call + ": " + ncclGetErrorString(result);
  const char* last = comm ? ncclGetLastError(comm) : ncclGetLastError(nullptr);
  if (last && *last) message += std::string(" (") + last + ")";
  throw NcclError(message);
}

#define MOESCOPE_NCCL_CHECK(comm, call)                                                  \
  do {                                                                                   \
    const ncclResult_t moescope_nccl_status_ = (call);                                   \
    if (moescope_nccl_status_ != ncclSuccess && moescope_nccl_status_ != ncclInProgress) \
      throwNcclError(moescope_nccl_status_, comm, #call);                                \
  } while (0)

ncclDataType_t ncclType(DType type) {
  switch (type) {
    case DType::F32:
      return ncclFloat32;
    case DType::F64:
      return ncclFloat64;
    case DType::I32:
      return ncclInt32;
    case DType::BF16:
      return ncclBfloat16;
    case DType::U8:
      return ncclUint8;
  }
  return ncclFloat32;
}

}  // namespace

void configureNcclEnvironment() {
  // NVLink multicast (NVLS) stays off on shared servers unless the user chose otherwise.
  setenv("NCCL_NVLS_ENABLE", "0", 0);
}

// The state every member of one group shares.
struct NcclWorld::Group {
  std::vector<int> ranks;
  std::mutex mutex;
  bool ids_ready = false;
  ncclUniqueId ids[3]{};  // collectives, messages to a higher index, messages to a lower index
  std::vector<std::weak_ptr<Member>> members;
  // Tracing: arrival time of each member at collective number seq (a ring; a member is at most one
  // collective ahead of another once it waited for the previous one), and the times senders posted.
  struct Arrival {
    uint64_t seq = ~uint64_t{0};
    int64_t ns = 0;
  };
  std::vector<Arrival> arrivals;            // [seq % ring][member]
  std::vector<std::deque<int64_t>> posted;  // [src * size + dst]
};

// One member's NCCL communicators and send stream; shared by the handles of the same group and rank.
struct NcclWorld::Member {
  int device = 0;
  ncclComm_t coll = nullptr, up = nullptr, down = nullptr;
  cudaStream_t send_stream = nullptr;
  cudaEvent_t ready = nullptr;  // the compute stream's work before a send
  const NcclWorld* world = nullptr;
  bool ended = false;

  void end(bool abort) {
    if (ended) return;
    ended = true;
    cudaSetDevice(device);
    for (ncclComm_t* c : {&coll, &up, &down}) {
      if (!*c) continue;
      if (abort) {
        ncclCommAbort(*c);
      } else {
        ncclCommDestroy(*c);
      }
      *c = nullptr;
    }
    if (ready) cudaEventDestroy(ready);
    if (send_stream) cudaStreamDestroy(send_stream);
    ready = nullptr;
    send_stream = nullptr;
  }
  ~Member() { end(world && world->aborted()); }
};

NcclWorld::NcclWorld(std::vector<int> devices, NcclProcesses processes)
    : devices_(std::move(devices)), processes_(std::move(processes)) {
  configureNcclEnvironment();
}

namespace {

// The tag of a group's ids between two processes: FNV-1a of its ranks, so both sides compute it
// without talking; the message repeats the ranks, and a receiver that gets another group's ids (two
// groups of one owner hashing alike, reached in another order) says so rather than hang in NCCL.
uint64_t groupTag(const std::vector<int>& ranks) {
  uint64_t h = 1469598103934665603ull;
  for (int r : ranks) {
    h ^= static_cast<uint32_t>(r);
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

void NcclWorld::shareIds(Group& g) {
  const size_t id_bytes = sizeof g.ids;
  std::vector<std::byte> message(g.ranks.size() * sizeof(int) + id_bytes);
  const int owner = processes_.spread() ? processes_.process_of(g.ranks[0]) : processes_.process;
  if (owner == processes_.process) {
    for (auto& id : g.ids) MOESCOPE_NCCL_CHECK(nullptr, ncclGetUniqueId(&id));
    if (processes_.spread()) {
      std::memcpy(message.data(), g.ranks.data(), g.ranks.size() * sizeof(int));
      std::memcpy(message.data() + g.ranks.size() * sizeof(int), g.ids, id_bytes);
      std::vector<int> told{owner};  // each other process of the group once
      for (int r : g.ranks) {
        const int q = processes_.process_of(r);
        if (std::find(told.begin(), told.end(), q) != told.end()) continue;
        told.push_back(q);
        processes_.send(q, groupTag(g.ranks), message);
      }
    }
  } else {
    processes_.recv(owner, groupTag(g.ranks), message);
    if (std::memcmp(message.data(), g.ranks.data(), g.ranks.size() * sizeof(int)) != 0)
      throw NcclError("NCCL ids for another group arrived from process " + std::to_string(owner));
    std::memcpy(g.ids, message.data() + g.ranks.size() * sizeof(int), id_bytes);
  }
  g.ids_ready = true;
}

NcclWorld::~NcclWorld() = default;

std::unique_ptr<Communicator> NcclWorld::communicator(int rank, const std::vector<int>& group) {
  int index = -1;
  for (size_t i = 0; i < group.size(); ++i) {
    if (group[i] == rank) index = static_cast<int>(i);
  }
  if (index < 0) throw std::logic_error("NcclWorld: rank " + std::to_string(rank) + " is not in the group");
  MOESCOPE_CUDA_CHECK(cudaSetDevice(device(rank)));
  std::shared_ptr<Group> g;
  {
    std::lock_guard lock(mutex_);
    auto& slot = groups_[group];
    if (!slot) {
      slot = std::make_shared<Group>();
      slot->ranks = group;
      slot->members.resize(group.size());
      slot->arrivals.resize(kArrivalRing * group.size());
      slot->posted.resize(group.size() * group.size());
    }
    g = slot;
  }
  std::shared_ptr<Member> member;
  {
    std::lock_guard lock(g->mutex);
    member = g->members[static_cast<size_t>(index)].lock();
    if (!member && group.size() > 1 && !g->ids_ready) shareIds(*g);
  }
  if (!member) {
    member = std::make_shared<Member>();
    member->device = device(rank);
    member->world = this;
    if (group.size() > 1) {
      const int n = static_cast<int>(group.size());
      for (int c = 0; c < 3; ++c) {
        ncclComm_t* comm = c == 0 ? &member->coll : c == 1 ? &member->up : &member->down;
        MOESCOPE_NCCL_CHECK(nullptr, ncclCommInitRank(comm, n, g->ids[c], index));
      }
      MOESCOPE_CUDA_CHECK(cudaStreamCreateWithFlags(&member->send_stream, cudaStreamNonBlocking));
      MOESCOPE_CUDA_CHECK(cudaEventCreateWithFlags(&member->ready, cudaEventDisableTiming));
    }
    std::lock_guard lock(g->mutex);
    g->members[static_cast<size_t>(index)] = member;
  }
  return std::make_unique<NcclCommunicator>(g, member, this, index);
}

void NcclWorld::abort(const std::string& /*reason*/) {
  aborted_.store(true);
}

void NcclWorld::synchronize(cudaStream_t stream) const {
  for (int spins = 0;; ++spins) {
    const cudaError_t status = cudaStreamQuery(stream);
    if (status == cudaSuccess) return;
    if (status != cudaErrorNotReady) MOESCOPE_CUDA_CHECK(status);
    if (aborted()) throw Cancelled("stopped: another rank failed or the run was cancelled");
    if (spins > 64) std::this_thread::yield();
  }
}

NcclCommunicator::NcclCommunicator(std::shared_ptr<NcclWorld::Group> group,
                                   std::shared_ptr<NcclWorld::Member> member, NcclWorld* world, int index)
    : g_(std::move(group)),
      m_(std::move(member)),
      world_(world),
      index_(index),
      calls_(communicatorId(g_->ranks, world->size()), g_->ranks.size()) {}

NcclCommunicator::~NcclCommunicator() = default;

int NcclCommunicator::size() const {
  return static_cast<int>(g_->ranks.size());
}

int32_t NcclCommunicator::rankOf(int member) const {
  return g_->ranks[static_cast<size_t>(member)];
}

void NcclCommunicator::abortNow() {
  m_->end(true);
}

void NcclCommunicator::checkPeer(int peer) const {
  if (peer < 0 || peer >= size() || peer == index_) {
    throw std::logic_error("NcclCommunicator: bad peer " + std::to_string(peer));
  }
}

// Host-timed spans wait for the stream so host time stands for GPU time, and show waiting on a peer
// as `wait`. With the GPU tracer on (span hooks installed), CUPTI records when the work ran, so spans
// are launch extents and nothing waits: the tracer adds no synchronisation to the run.
bool NcclCommunicator::hostTimed() const {
  return recorder_ != nullptr && tracer::spanHooks() == nullptr;
}

int64_t NcclCommunicator::arrive() {
  if (!recorder_) return 0;
  if (hostTimed()) world_->synchronize(stream_);
  const int64_t now = nowNs();
  std::lock_guard lock(g_->mutex);
  auto& slot =
      g_->arrivals[(sequence_ % kArrivalRing) * static_cast<size_t>(size()) + static_cast<size_t>(index_)];
  slot.seq = sequence_;
  slot.ns = now;
  return now;
}

void NcclCommunicator::finishCollective(const CommSpan& span, int64_t arrival, int64_t bytes, uint64_t id) {
  const uint64_t seq = sequence_++;
  if (!recorder_) return;
  const bool timed = hostTimed();
  if (timed) world_->synchronize(stream_);
  const int64_t end = nowNs();
  int64_t last = arrival;
  int straggler = index_;
  if (timed) {
    std::lock_guard lock(g_->mutex);
    for (int q = 0; q < size(); ++q) {
      const auto& slot =
          g_->arrivals[(seq % kArrivalRing) * static_cast<size_t>(size()) + static_cast<size_t>(q)];
      if (slot.seq == seq && slot.ns > last) {
        last = slot.ns;
        straggler = q;
      }
    }
  }
  last = std::min(last, end);
  tracer::SpanAttrs attrs =
      calls_.collective(span.attrs, last > arrival ? rankOf(straggler) : int32_t{storage::kNone});
  if (last > arrival) {
    tracer::SpanAttrs wait = attrs;
    wait.category = tracer::Category::Wait;
    wait.bytes = 0;
    recorder_->record("wait", wait, arrival, last);
  }
  attrs.bytes = bytes;
  recorder_->record(span.name, attrs, last, end, id);
}

void NcclCommunicator::allReduceSum(std::span<const CommBuffer> parts, const CommSpan& span) {
  if (world_->aborted()) throw Cancelled("stopped: another rank failed or the run was cancelled");
  const int64_t arrival = arrive();
  const uint64_t id = openLaunch(span);
  size_t bytes = 0;
  // Several parts go as one NCCL group: one launch, one arrival, one span.
  const bool group = size() > 1 && parts.size() > 1;
  if (group) MOESCOPE_NCCL_CHECK(m_->coll, ncclGroupStart());
  for (const CommBuffer& part : parts) {
    if (size() > 1 && part.count > 0) {
      MOESCOPE_NCCL_CHECK(m_->coll, ncclAllReduce(part.data, part.data, part.count, ncclType(part.type),
                                                  ncclSum, m_->coll, stream_));
    }
    bytes += part.count * dtypeSize(part.type);
  }
  if (group) MOESCOPE_NCCL_CHECK(m_->coll, ncclGroupEnd());
  closeLaunch();
  finishCollective(span, arrival, static_cast<int64_t>(bytes), id);
}

void NcclCommunicator::allToAll(const void* send, const size_t* sendCounts, void* recv,
                                const size_t* recvCounts, DType type, const CommSpan& span) {
  if (world_->aborted()) throw Cancelled("stopped: another rank failed or the run was cancelled");
  const int64_t arrival = arrive();
  const uint64_t id = openLaunch(span);
  const size_t esize = dtypeSize(type);
  const int n = size();
  size_t total = 0;
  const auto* in = static_cast<const unsigned char*>(send);
  auto* out = static_cast<unsigned char*>(recv);
  // This member's own block is a device copy; the others go through NCCL.
  size_t send_off = 0, recv_off = 0;
  for (int q = 0; q < index_; ++q) {
    send_off += sendCounts[q];
    recv_off += recvCounts[q];
  }
  if (sendCounts[index_] != recvCounts[index_]) {
    throw std::logic_error("all-to-all: member " + std::to_string(index_) + " sends itself " +
                           std::to_string(sendCounts[index_]) + " elements but expects " +
                           std::to_string(recvCounts[index_]));
  }
  if (sendCounts[index_] > 0) {
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(out + recv_off * esize, in + send_off * esize,
                                        sendCounts[index_] * esize, cudaMemcpyDeviceToDevice, stream_));
  }
  if (n > 1) {
    MOESCOPE_NCCL_CHECK(m_->coll, ncclGroupStart());
    size_t so = 0, ro = 0;
    for (int q = 0; q < n; ++q) {
      if (q != index_) {
        if (sendCounts[q] > 0)
          MOESCOPE_NCCL_CHECK(m_->coll,
                              ncclSend(in + so * esize, sendCounts[q], ncclType(type), q, m_->coll, stream_));
        if (recvCounts[q] > 0)
          MOESCOPE_NCCL_CHECK(
              m_->coll, ncclRecv(out + ro * esize, recvCounts[q], ncclType(type), q, m_->coll, stream_));
        total += sendCounts[q];
      }
      so += sendCounts[q];
      ro += recvCounts[q];
    }
    MOESCOPE_NCCL_CHECK(m_->coll, ncclGroupEnd());
  }
  closeLaunch();
  finishCollective(span, arrival, static_cast<int64_t>(total * esize), id);
}

void NcclCommunicator::send(const void* buf, size_t count, DType type, int peer, const CommSpan& span) {
  if (world_->aborted()) throw Cancelled("stopped: another rank failed or the run was cancelled");
  checkPeer(peer);
  int64_t t0 = 0;
  if (recorder_) {
    if (hostTimed()) world_->synchronize(stream_);
    t0 = nowNs();
    std::lock_guard lock(g_->mutex);
    g_->posted[static_cast<size_t>(index_ * size() + peer)].push_back(t0);
  }
  ncclComm_t comm = peer > index_ ? m_->up : m_->down;
  MOESCOPE_CUDA_CHECK(cudaEventRecord(m_->ready, stream_));
  MOESCOPE_CUDA_CHECK(cudaStreamWaitEvent(m_->send_stream, m_->ready, 0));
  const uint64_t id = openLaunch(span);
  MOESCOPE_NCCL_CHECK(comm, ncclSend(buf, count, ncclType(type), peer, comm, m_->send_stream));
  closeLaunch();
  if (recorder_) {
    // Posted: the transfer itself runs on the send stream while this stage computes on.
    tracer::SpanAttrs attrs = calls_.sent(span.attrs, peer, rankOf(peer));
    attrs.bytes = static_cast<int64_t>(count * dtypeSize(type));
    recorder_->record(span.name, attrs, t0, nowNs(), id);
  }
}

void NcclCommunicator::recv(void* buf, size_t count, DType type, int peer, const CommSpan& span) {
  if (world_->aborted()) throw Cancelled("stopped: another rank failed or the run was cancelled");
  checkPeer(peer);
  int64_t t0 = 0;
  if (recorder_) {
    if (hostTimed()) world_->synchronize(stream_);
    t0 = nowNs();
  }
  ncclComm_t comm = peer > index_ ? m_->down : m_->up;  // the peer sends to a lower index on `down`
  const uint64_t id = openLaunch(span);
  MOESCOPE_NCCL_CHECK(comm, ncclRecv(buf, count, ncclType(type), peer, comm, stream_));
  closeLaunch();
  if (!recorder_) return;
  const tracer::SpanAttrs identity = calls_.received(span.attrs, peer, rankOf(peer));
  const bool timed = hostTimed();
  if (timed) world_->synchronize(stream_);
  const int64_t end = nowNs();
  int64_t posted = t0;
  {
    std::lock_guard lock(g_->mutex);
    auto& box = g_->posted[static_cast<size_t>(peer * size() + index_)];
    if (!box.empty()) {
      if (timed) posted = std::clamp(box.front(), t0, end);
      box.pop_front();
    }
  }
  tracer::SpanAttrs attrs = identity;
  if (posted > t0) {
    attrs.category = tracer::Category::Wait;
    attrs.bytes = 0;
    recorder_->record("wait", attrs, t0, posted);
    attrs = identity;
  }
  attrs.bytes = static_cast<int64_t>(count * dtypeSize(type));
  recorder_->record(span.name, attrs, posted, end, id);
}

void NcclCommunicator::barrier(const CommSpan& span) {
  if (world_->aborted()) throw Cancelled("stopped: another rank failed or the run was cancelled");
  const int64_t arrival = arrive();
  if (size() > 1) {
    // A one-element all-reduce on a scratch word: NCCL has no barrier of its own.
    int32_t* word = nullptr;
    MOESCOPE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&word), sizeof(int32_t), stream_));
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(word, 0, sizeof(int32_t), stream_));
    MOESCOPE_NCCL_CHECK(m_->coll, ncclAllReduce(word, word, 1, ncclInt32, ncclSum, m_->coll, stream_));
    MOESCOPE_CUDA_CHECK(cudaFreeAsync(word, stream_));
  }
  world_->synchronize(stream_);
  finishCollective(span, arrival, 0, 0);
}

}  // namespace moescope::engine::cuda
