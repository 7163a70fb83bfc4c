// A group of ranks that exchange data with NCCL's semantics: all-reduce (sum), all-to-all with per-peer
// counts, send/recv between two members, barrier. The CPU backend implements it with threads
// (thread_communicator.h); the CUDA backend implements it over NCCL. Calls are collective: every member
// calls the same operations in the same order.
//
// Tracing: a call records one span of the given name and attributes (bytes filled in) for the transfer
// itself, and a separate `wait` span, before it, for the time it was blocked on a peer (until the peer
// sent, or the last member arrived), so that waiting shows as waiting (and, on a pipeline stage, as
// bubble) and not as communication.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tracer/span.h"

namespace moescope::engine {

// BF16: the CUDA backend's compute copies (the thread communicator does not sum it). U8: flags.
enum class DType : uint8_t { F32, F64, I32, BF16, U8 };

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::F64:
      return 8;
    case DType::BF16:
      return 2;
    case DType::U8:
      return 1;
    default:
      return 4;
  }
}

template <class T>
constexpr DType dtypeOf();
template <>
constexpr DType dtypeOf<float>() {
  return DType::F32;
}
template <>
constexpr DType dtypeOf<double>() {
  return DType::F64;
}
template <>
constexpr DType dtypeOf<int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtypeOf<uint8_t>() {
  return DType::U8;
}

// count elements of one type at data: one part of a call that moves several arrays at once.
struct CommBuffer {
  void* data = nullptr;
  size_t count = 0;
  DType type = DType::F32;
};

// What a call records when tracing is on.
struct CommSpan {
  std::string_view name = "comm";
  tracer::SpanAttrs attrs;
};

// The id a group's calls are recorded with (tracer::SpanAttrs::comm), the same on every member: 0 for
// the whole world; otherwise from the group's first two global ranks, since two ranks share at most
// one group besides the world (they differ in stage, tp or dp rank, and each group fixes two of them).
inline int32_t communicatorId(const std::vector<int>& group, int worldSize) {
  if (static_cast<int>(group.size()) == worldSize) return 0;
  const int64_t second = group.size() > 1 ? group[1] : worldSize;
  return static_cast<int32_t>(1 + int64_t{group[0]} * (worldSize + 1) + second);
}

// The identity a member records its calls with: per communicator, collectives counted in call order;
// sends and receives counted per peer and direction, so the k-th send to a peer matches its k-th receive.
class CallCounter {
 public:
  CallCounter(int32_t comm, size_t members) : comm_(comm), sent_(members), received_(members) {}
  // The identity of the next collective, waiting on `peer` (kNone when it did not wait).
  tracer::SpanAttrs collective(tracer::SpanAttrs attrs, int32_t peer) {
    attrs.comm = comm_;
    attrs.seq = collectives_++;
    attrs.peer = peer;
    return attrs;
  }
  tracer::SpanAttrs sent(tracer::SpanAttrs attrs, int member, int32_t peerRank) {
    return p2p(attrs, sent_[static_cast<size_t>(member)], peerRank);
  }
  tracer::SpanAttrs received(tracer::SpanAttrs attrs, int member, int32_t peerRank) {
    return p2p(attrs, received_[static_cast<size_t>(member)], peerRank);
  }

 private:
  tracer::SpanAttrs p2p(tracer::SpanAttrs attrs, int32_t& counter, int32_t peerRank) const {
    attrs.comm = comm_;
    attrs.seq = counter++;
    attrs.peer = peerRank;
    return attrs;
  }
  int32_t comm_ = 0;
  int32_t collectives_ = 0;
  std::vector<int32_t> sent_, received_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  // This member's index in the group, and the group's size.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Where this member records its spans; nullptr (the default) records nothing.
  virtual void setRecorder(tracer::TrackRecorder* recorder) = 0;

  // In place: each part becomes its element-wise sum over the group, identical on every member. One
  // call, one span, however many parts (arrays of different types reduced together, e.g. a bf16
  // activation gradient and the fp32 router gradient of the same MoE layer).
  virtual void allReduceSum(std::span<const CommBuffer> parts, const CommSpan& span) = 0;
  // send holds size() consecutive blocks, block q (sendCounts[q] elements) for member q; recv receives
  // size() blocks, block q (recvCounts[q] elements) from member q. recvCounts[q] must equal member q's
  // sendCounts[rank()].
  virtual void allToAll(const void* send, const size_t* sendCounts, void* recv, const size_t* recvCounts,
                        DType type, const CommSpan& span) = 0;
  // Point to point; messages between two members arrive in the order they were sent. send may return
  // before the peer received (buffered).
  virtual void send(const void* buf, size_t count, DType type, int peer, const CommSpan& span) = 0;
  virtual void recv(void* buf, size_t count, DType type, int peer, const CommSpan& span) = 0;
  virtual void barrier(const CommSpan& span) = 0;

  void allReduceSum(void* buf, size_t count, DType type, const CommSpan& span) {
    const CommBuffer part{buf, count, type};
    allReduceSum(std::span<const CommBuffer>(&part, 1), span);
  }
  template <class T>
  void allReduceSum(T* buf, size_t count, const CommSpan& span) {
    allReduceSum(static_cast<void*>(buf), count, dtypeOf<T>(), span);
  }
  template <class T>
  void allToAll(const T* send, const size_t* sendCounts, T* recv, const size_t* recvCounts,
                const CommSpan& span) {
    allToAll(static_cast<const void*>(send), sendCounts, static_cast<void*>(recv), recvCounts, dtypeOf<T>(),
             span);
  }
  template <class T>
  void send(const T* buf, size_t count, int peer, const CommSpan& span) {
    send(static_cast<const void*>(buf), count, dtypeOf<T>(), peer, span);
  }
  template <class T>
  void recv(T* buf, size_t count, int peer, const CommSpan& span) {
    recv(static_cast<void*>(buf), count, dtypeOf<T>(), peer, span);
  }
};

}  // namespace moescope::engine
