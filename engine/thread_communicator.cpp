#include "engine/thread_communicator.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string>

#include "engine/engine_error.h"

namespace moescope::engine {

struct ThreadWorld::Group {
  int size = 0;
  ThreadWorld* world = nullptr;
  std::mutex mutex;
  std::condition_variable cv;
  uint64_t generation = 0;
  int arrived = 0;
  int64_t released_ns = 0;  // when the last member of the latest barrier arrived
  int last_member = 0;      // who it was
  // Per-member staging of a collective's input, two sets used in turn ([parity * size + member]).
  struct Slot {
    std::vector<unsigned char> data;
    std::vector<size_t> counts;  // all-to-all: elements for each member
  };
  std::vector<Slot> slots;
  // Mailboxes of point-to-point messages, [src * size + dst], in send order.
  struct Message {
    std::vector<unsigned char> bytes;
    int64_t posted_ns = 0;
  };
  std::vector<std::deque<Message>> mail;
};

namespace {

using tracer::nowNs;

template <class T>
void sumInto(unsigned char* dst, const std::vector<const void*>& in, size_t lo, size_t hi) {
  T* d = reinterpret_cast<T*>(dst);
  for (size_t i = lo; i < hi; ++i) {
    T s = static_cast<const T*>(in[0])[i];
    for (size_t r = 1; r < in.size(); ++r) s += static_cast<const T*>(in[r])[i];
    d[i] = s;
  }
}

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<ThreadWorld::Group> group, ThreadWorld* world, int rank,
                     std::vector<int> members)
      : g_(std::move(group)),
        world_(world),
        rank_(rank),
        members_(std::move(members)),
        calls_(communicatorId(members_, world->size()), members_.size()) {}

  int rank() const override { return rank_; }
  int size() const override { return g_->size; }
  void setRecorder(tracer::TrackRecorder* recorder) override { recorder_ = recorder; }

  // One barrier per collective: each member copies its input into its staging slot of the
  // collective's parity, then, once every member arrived, reads what it needs from the others' slots.
  // A member can be at most one collective ahead of another (it cannot pass the next barrier alone), so
  // it never overwrites a slot that a slower member still reads.
  using Communicator::allReduceSum;
  void allReduceSum(std::span<const CommBuffer> parts, const CommSpan& what) override {
    checkAborted();
    CommSpan span{what.name, calls_.collective(what.attrs, storage::kNone)};
    int64_t comm_start = recorder_ ? nowNs() : 0;
    size_t bytes = 0;
    for (const CommBuffer& part : parts) bytes += part.count * dtypeSize(part.type);
    std::vector<const unsigned char*> inputs(static_cast<size_t>(g_->size));
    {
      std::unique_lock lock(g_->mutex);
      const size_t parity = g_->generation % 2;
      auto& mine = slot(parity, rank_);
      mine.data.resize(bytes);
      size_t offset = 0;
      for (const CommBuffer& part : parts) {
        std::memcpy(mine.data.data() + offset, part.data, part.count * dtypeSize(part.type));
        offset += part.count * dtypeSize(part.type);
      }
      arriveAndWait(lock, span, comm_start);
      for (int q = 0; q < g_->size; ++q) inputs[static_cast<size_t>(q)] = slot(parity, q).data.data();
    }
    // Every member sums in member order, so all get the same bits.
    std::vector<const void*> in(inputs.size());
    size_t offset = 0;
    for (const CommBuffer& part : parts) {
      for (size_t q = 0; q < in.size(); ++q) in[q] = inputs[q] + offset;
      auto* out = static_cast<unsigned char*>(part.data);
      switch (part.type) {
        case DType::F32:
          sumInto<float>(out, in, 0, part.count);
          break;
        case DType::F64:
          sumInto<double>(out, in, 0, part.count);
          break;
        case DType::I32:
          sumInto<int32_t>(out, in, 0, part.count);
          break;
        case DType::U8:
          sumInto<uint8_t>(out, in, 0, part.count);
          break;
        case DType::BF16:
          throw std::logic_error("thread communicator: bf16 all-reduce is not supported");
      }
      offset += part.count * dtypeSize(part.type);
    }
    record(span, comm_start, static_cast<int64_t>(bytes));
  }

  void allToAll(const void* send, const size_t* sendCounts, void* recv, const size_t* recvCounts, DType type,
                const CommSpan& what) override {
    checkAborted();
    CommSpan span{what.name, calls_.collective(what.attrs, storage::kNone)};
    int64_t comm_start = recorder_ ? nowNs() : 0;
    const size_t esize = dtypeSize(type);
    const size_t n = static_cast<size_t>(g_->size);
    size_t total = 0;
    for (size_t q = 0; q < n; ++q) total += sendCounts[q];
    std::vector<const ThreadWorld::Group::Slot*> peers(n);
    {
      std::unique_lock lock(g_->mutex);
      const size_t parity = g_->generation % 2;
      auto& mine = slot(parity, rank_);
      mine.data.resize(total * esize);
      std::memcpy(mine.data.data(), send, total * esize);
      mine.counts.assign(sendCounts, sendCounts + n);
      arriveAndWait(lock, span, comm_start);
      for (size_t q = 0; q < n; ++q) peers[q] = &slot(parity, static_cast<int>(q));
    }
    size_t recv_offset = 0;
    for (size_t q = 0; q < n; ++q) {
      const auto& theirs = peers[q]->counts;
      if (theirs[static_cast<size_t>(rank_)] != recvCounts[q]) {
        throw std::runtime_error("all-to-all: member " + std::to_string(q) + " sends " +
                                 std::to_string(theirs[static_cast<size_t>(rank_)]) + " elements to member " +
                                 std::to_string(rank_) + ", which expects " + std::to_string(recvCounts[q]));
      }
      size_t send_offset = 0;
      for (int j = 0; j < rank_; ++j) send_offset += theirs[static_cast<size_t>(j)];
      std::memcpy(static_cast<unsigned char*>(recv) + recv_offset * esize,
                  peers[q]->data.data() + send_offset * esize, recvCounts[q] * esize);
      recv_offset += recvCounts[q];
    }
    record(span, comm_start, static_cast<int64_t>((total - sendCounts[rank_]) * esize));
  }

  void send(const void* buf, size_t count, DType type, int peer, const CommSpan& what) override {
    checkAborted();
    const CommSpan span{what.name, calls_.sent(what.attrs, peer, members_.at(static_cast<size_t>(peer)))};
    const int64_t t0 = recorder_ ? nowNs() : 0;
    const size_t bytes = count * dtypeSize(type);
    std::vector<unsigned char> message(bytes);
    std::memcpy(message.data(), buf, bytes);
    {
      std::lock_guard lock(g_->mutex);
      g_->mail[static_cast<size_t>(rank_ * g_->size + peer)].push_back({std::move(message), nowNs()});
    }
    g_->cv.notify_all();
    record(span, t0, static_cast<int64_t>(bytes));
  }

  void recv(void* buf, size_t count, DType type, int peer, const CommSpan& what) override {
    checkAborted();
    const CommSpan span{what.name, calls_.received(what.attrs, peer, members_.at(static_cast<size_t>(peer)))};
    int64_t comm_start = recorder_ ? nowNs() : 0;
    const size_t bytes = count * dtypeSize(type);
    std::vector<unsigned char> message;
    {
      std::unique_lock lock(g_->mutex);
      auto& box = g_->mail[static_cast<size_t>(peer * g_->size + rank_)];
      if (box.empty()) {
        g_->cv.wait(lock, [&] { return !box.empty() || world_->aborted(); });
        if (box.empty()) throwAborted();
        if (recorder_) {
          // Blocked on the peer until it posted the message; any later wake-up delay is this rank's.
          const int64_t ready = std::max(comm_start, box.front().posted_ns);
          recordWait(span, comm_start, ready);
          comm_start = ready;
        }
      }
      message = std::move(box.front().bytes);
      box.pop_front();
    }
    if (message.size() != bytes) {
      throw std::runtime_error("recv: member " + std::to_string(peer) + " sent " +
                               std::to_string(message.size()) + " bytes, member " + std::to_string(rank_) +
                               " expected " + std::to_string(bytes));
    }
    std::memcpy(buf, message.data(), bytes);
    record(span, comm_start, static_cast<int64_t>(bytes));
  }

  void barrier(const CommSpan& what) override {
    checkAborted();
    CommSpan span{what.name, calls_.collective(what.attrs, storage::kNone)};
    int64_t start = recorder_ ? nowNs() : 0;
    std::unique_lock lock(g_->mutex);
    arriveAndWait(lock, span, start);
  }

 private:
  void checkAborted() const {
    if (world_->aborted()) throwAborted();
  }
  [[noreturn]] void throwAborted() const {
    throw Cancelled("stopped: another rank failed or the run was cancelled");
  }

  ThreadWorld::Group::Slot& slot(size_t parity, int member) {
    return g_->slots[parity * static_cast<size_t>(g_->size) + static_cast<size_t>(member)];
  }

  // A barrier over the group. If this member had to wait, a wait span is recorded up to the last
  // member's arrival and start moves there.
  void arriveAndWait(std::unique_lock<std::mutex>& lock, CommSpan& span, int64_t& start) {
    const uint64_t gen = g_->generation;
    if (++g_->arrived == g_->size) {
      g_->released_ns = nowNs();
      g_->last_member = rank_;
      g_->arrived = 0;
      ++g_->generation;
      g_->cv.notify_all();
      return;
    }
    g_->cv.wait(lock, [&] { return g_->generation != gen || world_->aborted(); });
    if (g_->generation == gen) throwAborted();
    if (recorder_) {
      // Blocked on the peers until the last one arrived; any later wake-up delay is this rank's.
      const int64_t ready = std::max(start, g_->released_ns);
      span.attrs.peer = members_[static_cast<size_t>(g_->last_member)];
      recordWait(span, start, ready);
      start = ready;
    }
  }

  void recordWait(const CommSpan& span, int64_t start, int64_t end) {
    tracer::SpanAttrs attrs = span.attrs;
    attrs.category = tracer::Category::Wait;
    attrs.bytes = 0;
    recorder_->record("wait", attrs, start, end);
  }

  void record(const CommSpan& span, int64_t start, int64_t bytes) {
    if (!recorder_) return;
    tracer::SpanAttrs attrs = span.attrs;
    attrs.bytes = bytes;
    recorder_->record(span.name, attrs, start, nowNs());
  }

  std::shared_ptr<ThreadWorld::Group> g_;
  ThreadWorld* world_;
  int rank_;
  std::vector<int> members_;  // global ranks, in member order
  CallCounter calls_;
  tracer::TrackRecorder* recorder_ = nullptr;
};

}  // namespace

ThreadWorld::ThreadWorld(int size) : size_(size) {}
ThreadWorld::~ThreadWorld() = default;

std::unique_ptr<Communicator> ThreadWorld::communicator(int rank, const std::vector<int>& group) {
  int index = -1;
  for (size_t i = 0; i < group.size(); ++i) {
    if (group[i] == rank) index = static_cast<int>(i);
  }
  if (index < 0) throw std::logic_error("ThreadWorld: rank " + std::to_string(rank) + " is not in the group");
  std::lock_guard lock(mutex_);
  auto& g = groups_[group];
  if (!g) {
    g = std::make_shared<Group>();
    g->size = static_cast<int>(group.size());
    g->world = this;
    g->slots.resize(2 * group.size());
    g->mail.resize(group.size() * group.size());
  }
  return std::make_unique<ThreadCommunicator>(g, this, index, group);
}

void ThreadWorld::abort(const std::string& reason) {
  std::vector<std::shared_ptr<Group>> groups;
  {
    std::lock_guard lock(mutex_);
    if (reason_.empty()) reason_ = reason;
    aborted_.store(true);
    for (auto& [key, g] : groups_) groups.push_back(g);
  }
  for (auto& g : groups) {
    std::lock_guard lock(g->mutex);
    g->cv.notify_all();
  }
}

}  // namespace moescope::engine
