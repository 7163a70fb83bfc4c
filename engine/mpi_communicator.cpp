#include "engine/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "engine/engine_error.h"

namespace moescope::engine {

struct MpiWorld::Shared {
  int size = 0, perProcess = 1, process = 0;
  std::vector<int64_t> offsets;
  const std::atomic<bool>* stop = nullptr;
  std::atomic<bool> aborted{false};
  bool stopped() const { return aborted.load() || (stop != nullptr && stop->load()); }
};

namespace {

using tracer::nowNs;

// What every message starts with.
struct Header {
  int64_t arrival = 0;  // the sender's arrival (collectives) or post time (send), on process 0's clock
  int64_t bytes = 0;    // payload bytes after the header
};

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw std::runtime_error(std::string("MPI ") + what + ": " +
                           std::string(text, static_cast<size_t>(length)));
}

template <class T>
void sumInto(unsigned char* dst, const std::vector<const unsigned char*>& in, size_t count) {
  T* d = reinterpret_cast<T*>(dst);
  for (size_t i = 0; i < count; ++i) {
    T s;
    std::memcpy(&s, in[0] + i * sizeof(T), sizeof(T));
    for (size_t r = 1; r < in.size(); ++r) {
      T v;
      std::memcpy(&v, in[r] + i * sizeof(T), sizeof(T));
      s += v;
    }
    d[i] = s;
  }
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(std::shared_ptr<MpiWorld::Shared> shared, std::vector<int> group, int index)
      : s_(std::move(shared)),
        group_(std::move(group)),
        index_(index),
        world_(static_cast<int>(group_.size()) == s_->size),
        calls_(communicatorId(group_, s_->size), group_.size()) {}

  ~MpiCommunicator() override {
    // Buffered sends still in flight complete once their receivers take them (every rank receives what
    // it is sent before its run ends); after a stop nothing will take them.
    try {
      std::vector<MPI_Request> requests;
      for (auto& p : pending_) requests.push_back(p.request);
      if (!requests.empty() && !s_->stopped()) waitAll(requests);
    } catch (const std::exception&) {
    }
  }

  int rank() const override { return index_; }
  int size() const override { return static_cast<int>(group_.size()); }
  void setRecorder(tracer::TrackRecorder* recorder) override { recorder_ = recorder; }

  using Communicator::allReduceSum;
  void allReduceSum(std::span<const CommBuffer> parts, const CommSpan& span) override {
    checkStopped();
    const int64_t arrival = nowNs();
    size_t bytes = 0;
    for (const CommBuffer& part : parts) bytes += part.count * dtypeSize(part.type);
    std::vector<unsigned char> mine = message(arrival, bytes);
    size_t offset = sizeof(Header);
    for (const CommBuffer& part : parts) {
      std::memcpy(mine.data() + offset, part.data, part.count * dtypeSize(part.type));
      offset += part.count * dtypeSize(part.type);
    }
    std::vector<const std::vector<unsigned char>*> out(group_.size(), &mine);
    std::vector<size_t> inBytes(group_.size(), bytes);
    auto in = exchange(out, inBytes);
    const auto [last, straggler] = lastArrival(in, arrival);
    std::vector<const unsigned char*> inputs(group_.size());
    offset = sizeof(Header);
    for (const CommBuffer& part : parts) {
      for (size_t q = 0; q < group_.size(); ++q)
        inputs[q] = (q == static_cast<size_t>(index_) ? mine.data() : in[q].data()) + offset;
      auto* dst = static_cast<unsigned char*>(part.data);
      switch (part.type) {
        case DType::F32:
          sumInto<float>(dst, inputs, part.count);
          break;
        case DType::F64:
          sumInto<double>(dst, inputs, part.count);
          break;
        case DType::I32:
          sumInto<int32_t>(dst, inputs, part.count);
          break;
        case DType::U8:
          sumInto<uint8_t>(dst, inputs, part.count);
          break;
        case DType::BF16:
          throw std::logic_error("MPI communicator: bf16 all-reduce is not supported");
      }
      offset += part.count * dtypeSize(part.type);
    }
    record(span.name, calls_.collective(span.attrs, waited(last, arrival, straggler)), arrival, last,
           static_cast<int64_t>(bytes));
  }

  void allToAll(const void* send, const size_t* sendCounts, void* recv, const size_t* recvCounts, DType type,
                const CommSpan& span) override {
    checkStopped();
    const int64_t arrival = nowNs();
    const size_t esize = dtypeSize(type), n = group_.size();
    std::vector<std::vector<unsigned char>> blocks(n);
    std::vector<const std::vector<unsigned char>*> out(n);
    std::vector<size_t> inBytes(n);
    size_t offset = 0, sent = 0;
    for (size_t q = 0; q < n; ++q) {
      blocks[q] = message(arrival, sendCounts[q] * esize);
      std::memcpy(blocks[q].data() + sizeof(Header), static_cast<const unsigned char*>(send) + offset * esize,
                  sendCounts[q] * esize);
      offset += sendCounts[q];
      if (q != static_cast<size_t>(index_)) sent += sendCounts[q] * esize;
      out[q] = &blocks[q];
      inBytes[q] = recvCounts[q] * esize;
    }
    auto in = exchange(out, inBytes);
    const auto [last, straggler] = lastArrival(in, arrival);
    size_t at = 0;
    for (size_t q = 0; q < n; ++q) {
      const unsigned char* from = q == static_cast<size_t>(index_) ? blocks[q].data() : in[q].data();
      std::memcpy(static_cast<unsigned char*>(recv) + at * esize, from + sizeof(Header),
                  recvCounts[q] * esize);
      at += recvCounts[q];
    }
    record(span.name, calls_.collective(span.attrs, waited(last, arrival, straggler)), arrival, last,
           static_cast<int64_t>(sent));
  }

  void send(const void* buf, size_t count, DType type, int peer, const CommSpan& span) override {
    checkStopped();
    prune();
    const int64_t t0 = nowNs();
    const size_t bytes = count * dtypeSize(type);
    Pending p;
    p.bytes = message(t0, bytes);
    std::memcpy(p.bytes.data() + sizeof(Header), buf, bytes);
    const int to = group_.at(static_cast<size_t>(peer));
    check(MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, to / s_->perProcess,
                    tag(me(), to), MPI_COMM_WORLD, &p.request),
          "send");
    pending_.push_back(std::move(p));
    tracer::SpanAttrs attrs = calls_.sent(span.attrs, peer, to);
    if (recorder_) {
      attrs.bytes = static_cast<int64_t>(bytes);
      recorder_->record(span.name, attrs, t0, nowNs());
    }
  }

  void recv(void* buf, size_t count, DType type, int peer, const CommSpan& span) override {
    checkStopped();
    prune();
    const int64_t start = nowNs();
    const size_t bytes = count * dtypeSize(type);
    std::vector<unsigned char> in(sizeof(Header) + bytes);
    const int from = group_.at(static_cast<size_t>(peer));
    std::vector<MPI_Request> request(1);
    check(MPI_Irecv(in.data(), static_cast<int>(in.size()), MPI_BYTE, from / s_->perProcess, tag(from, me()),
                    MPI_COMM_WORLD, &request[0]),
          "recv");
    waitAll(request);
    Header h;
    std::memcpy(&h, in.data(), sizeof h);
    if (h.bytes != static_cast<int64_t>(bytes)) {
      throw std::runtime_error("recv: member " + std::to_string(peer) + " sent " + std::to_string(h.bytes) +
                               " bytes, member " + std::to_string(index_) + " expected " +
                               std::to_string(bytes));
    }
    std::memcpy(buf, in.data() + sizeof(Header), bytes);
    record(span.name, calls_.received(span.attrs, peer, from), start, fromRank0(h.arrival),
           static_cast<int64_t>(bytes));
  }

  void barrier(const CommSpan& span) override {
    checkStopped();
    const int64_t arrival = nowNs();
    std::vector<unsigned char> mine = message(arrival, 0);
    std::vector<const std::vector<unsigned char>*> out(group_.size(), &mine);
    auto in = exchange(out, std::vector<size_t>(group_.size(), 0));
    const auto [last, straggler] = lastArrival(in, arrival);
    const tracer::SpanAttrs attrs = calls_.collective(span.attrs, waited(last, arrival, straggler));
    if (recorder_ && last > arrival) recordWait(attrs, arrival, last);
  }

 private:
  struct Pending {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<unsigned char> bytes;
  };

  int me() const { return group_[static_cast<size_t>(index_)]; }
  int tag(int from, int to) const { return ((world_ ? s_->size : 0) + from) * s_->size + to; }
  int64_t toRank0(int64_t local) const { return local + s_->offsets[static_cast<size_t>(s_->process)]; }
  int64_t fromRank0(int64_t t) const { return t - s_->offsets[static_cast<size_t>(s_->process)]; }

  std::vector<unsigned char> message(int64_t arrival, size_t bytes) const {
    std::vector<unsigned char> m(sizeof(Header) + bytes);
    const Header h{toRank0(arrival), static_cast<int64_t>(bytes)};
    std::memcpy(m.data(), &h, sizeof h);
    return m;
  }

  void checkStopped() const {
    if (s_->stopped()) throw Cancelled("stopped: another rank failed or the run was cancelled");
  }

  // Waits for the requests, polling so that a stop is noticed: spins briefly (a message between
  // processes of one host takes a few microseconds), then sleeps 20 µs between tests so that waiting
  // ranks leave the cores to the ones they wait for (tests run 4 processes on 2 cores).
  void waitAll(std::vector<MPI_Request>& requests) const {
    for (int spins = 0;; ++spins) {
      int done = 0;
      check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE),
            "wait");
      if (done) return;
      checkStopped();
      if (spins < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
    }
  }

  // Frees the buffered sends that have completed.
  void prune() {
    std::erase_if(pending_, [](Pending& p) {
      int done = 0;
      MPI_Test(&p.request, &done, MPI_STATUS_IGNORE);
      return done != 0;
    });
  }

  // Sends out[q] to every other member q and receives inBytes[q] of payload from each.
  std::vector<std::vector<unsigned char>> exchange(const std::vector<const std::vector<unsigned char>*>& out,
                                                   const std::vector<size_t>& inBytes) {
    prune();
    const size_t n = group_.size();
    std::vector<std::vector<unsigned char>> in(n);
    std::vector<MPI_Request> requests;
    for (size_t q = 0; q < n; ++q) {
      if (q == static_cast<size_t>(index_)) continue;
      const int peer = group_[q];
      in[q].resize(sizeof(Header) + inBytes[q]);
      requests.emplace_back();
      check(MPI_Irecv(in[q].data(), static_cast<int>(in[q].size()), MPI_BYTE, peer / s_->perProcess,
                      tag(peer, me()), MPI_COMM_WORLD, &requests.back()),
            "collective receive");
    }
    for (size_t q = 0; q < n; ++q) {
      if (q == static_cast<size_t>(index_)) continue;
      const int peer = group_[q];
      requests.emplace_back();
      check(MPI_Isend(out[q]->data(), static_cast<int>(out[q]->size()), MPI_BYTE, peer / s_->perProcess,
                      tag(me(), peer), MPI_COMM_WORLD, &requests.back()),
            "collective send");
    }
    waitAll(requests);
    for (size_t q = 0; q < n; ++q) {
      if (q == static_cast<size_t>(index_)) continue;
      Header h;
      std::memcpy(&h, in[q].data(), sizeof h);
      if (h.bytes != static_cast<int64_t>(inBytes[q])) {
        throw std::runtime_error("collective: member " + std::to_string(q) + " sent " +
                                 std::to_string(h.bytes) + " bytes, member " + std::to_string(index_) +
                                 " expected " + std::to_string(inBytes[q]));
      }
    }
    return in;
  }

  // The last member's arrival on this process's clock (at least this member's), and who it was.
  std::pair<int64_t, int> lastArrival(const std::vector<std::vector<unsigned char>>& in,
                                      int64_t arrival) const {
    int64_t last = arrival;
    int who = me();
    for (size_t q = 0; q < in.size(); ++q) {
      if (q == static_cast<size_t>(index_)) continue;
      Header h;
      std::memcpy(&h, in[q].data(), sizeof h);
      const int64_t t = fromRank0(h.arrival);
      if (t > last) {
        last = t;
        who = group_[q];
      }
    }
    return {last, who};
  }

  static int32_t waited(int64_t last, int64_t arrival, int straggler) {
    return last > arrival ? straggler : storage::kNone;
  }

  void recordWait(tracer::SpanAttrs attrs, int64_t start, int64_t end) {
    attrs.category = tracer::Category::Wait;
    attrs.bytes = 0;
    recorder_->record("wait", attrs, start, end);
  }

  // The call's spans: waiting from start until ready (if later), then the transfer until now.
  void record(std::string_view name, tracer::SpanAttrs attrs, int64_t start, int64_t ready, int64_t bytes) {
    if (!recorder_) return;
    if (ready > start) {
      recordWait(attrs, start, ready);
      start = ready;
    }
    attrs.bytes = bytes;
    recorder_->record(name, attrs, start, std::max(start, nowNs()));
  }

  std::shared_ptr<MpiWorld::Shared> s_;
  std::vector<int> group_;
  int index_;
  bool world_;
  CallCounter calls_;
  tracer::TrackRecorder* recorder_ = nullptr;
  std::vector<Pending> pending_;
};

}  // namespace

MpiWorld::MpiWorld(int worldSize, int ranksPerProcess, std::vector<int64_t> clockOffsets,
                   const std::atomic<bool>* stop)
    : size_(worldSize), perProcess_(ranksPerProcess), shared_(std::make_shared<Shared>()) {
  shared_->size = worldSize;
  shared_->perProcess = ranksPerProcess;
  MPI_Comm_rank(MPI_COMM_WORLD, &shared_->process);
  shared_->offsets = std::move(clockOffsets);
  shared_->stop = stop;
  int* upper = nullptr;
  int found = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &upper, &found);
  const int64_t needed = 2 * int64_t{worldSize} * worldSize;
  if (found && needed > *upper) {
    throw InputError("MPI: " + std::to_string(worldSize) + " ranks need message tags up to " +
                     std::to_string(needed) + ", this MPI allows " + std::to_string(*upper));
  }
}

MpiWorld::~MpiWorld() = default;

std::unique_ptr<Communicator> MpiWorld::communicator(int rank, const std::vector<int>& group) {
  const auto it = std::find(group.begin(), group.end(), rank);
  if (it == group.end())
    throw std::logic_error("MpiWorld: rank " + std::to_string(rank) + " is not in the group");
  if (processOf(rank) != shared_->process)
    throw std::logic_error("MpiWorld: rank " + std::to_string(rank) + " is not one of this process's");
  return std::make_unique<MpiCommunicator>(shared_, group, static_cast<int>(it - group.begin()));
}

void MpiWorld::abort(const std::string&) {
  shared_->aborted.store(true);
}

bool MpiWorld::stopped() const {
  return shared_->stopped();
}

}  // namespace moescope::engine
