#include "engine/thread_communicator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "base/run_tasks.h"
#include "engine/engine_error.h"
#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"
#include "tracer/tracer.h"

namespace moescope::engine {
namespace {

// Runs body(rank) on `size` threads; returns after all finished, with the first rank's error if any.
void runRanks(int size, const std::function<void(int)>& body) {
  runTasks(size, body);
}

TEST(ThreadCommunicator, AllReduceSumsIdenticallyOnEveryMember) {
  for (int size : {1, 2, 3, 4}) {
    ThreadWorld world(size);
    std::vector<std::vector<float>> bufs(static_cast<size_t>(size));
    runRanks(size, [&](int r) {
      auto comm = world.communicator(r, [&] {
        std::vector<int> g;
        for (int i = 0; i < size; ++i) g.push_back(i);
        return g;
      }());
      for (int round = 0; round < 3; ++round) {
        std::vector<float> v(7 + round);
        for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((r + 1) * 10 + i + round);
        comm->allReduceSum(v.data(), v.size(), CommSpan{});
        bufs[static_cast<size_t>(r)] = v;
      }
      double d[2] = {0.5 * r, 1.0};
      comm->allReduceSum(d, 2, CommSpan{});
      EXPECT_EQ(d[1], size);
    });
    for (int r = 0; r < size; ++r) {
      EXPECT_EQ(bufs[static_cast<size_t>(r)], bufs[0]);
      for (size_t i = 0; i < bufs[0].size(); ++i) {
        float expected = 0;
        for (int q = 0; q < size; ++q) expected += static_cast<float>((q + 1) * 10 + i + 2);
        EXPECT_EQ(bufs[0][i], expected);
      }
    }
  }
}

// Arrays of several types reduced in one call: each summed in its own type, one span with all the bytes.
TEST(ThreadCommunicator, AllReduceSumsSeveralArraysOfTheirOwnTypesInOneCall) {
  const moescope::testing::TempRunFile file;
  auto tracer = tracer::Tracer::open(file.path(), storage::RunInfo{});
  tracer::TrackRecorder* tracks[3];
  for (int r = 0; r < 3; ++r) {
    tracer->addRank({.rank = r});
    tracks[r] = tracer->hostTrack(r, "rank " + std::to_string(r) + " host");
  }
  ThreadWorld world(3);
  runRanks(3, [&](int r) {
    auto comm = world.communicator(r, {0, 1, 2});
    comm->setRecorder(tracks[r]);
    std::vector<float> f(5, 1.5f * static_cast<float>(r + 1));
    std::vector<double> d(3, 0.25 * (r + 1));
    std::vector<int32_t> i(2, 10 * (r + 1));
    std::vector<uint8_t> u(4, static_cast<uint8_t>(r + 1));
    const CommBuffer parts[] = {{f.data(), f.size(), DType::F32},
                                {d.data(), d.size(), DType::F64},
                                {i.data(), i.size(), DType::I32},
                                {u.data(), u.size(), DType::U8}};
    comm->allReduceSum(parts, CommSpan{"moe_allreduce", {.category = storage::Category::CommTpAllreduce}});
    EXPECT_EQ(f, std::vector<float>(5, 9.0f));
    EXPECT_EQ(d, std::vector<double>(3, 1.5));
    EXPECT_EQ(i, std::vector<int32_t>(2, 60));
    EXPECT_EQ(u, std::vector<uint8_t>(4, 6));
    tracks[r]->flush();
  });
  tracer->finish(storage::RunStatus::Complete, "");
  tracer.reset();
  const auto trace = storage::RunReader::open(file.path())->load();
  for (int r = 0; r < 3; ++r) {
    int transfers = 0;
    const auto& cols = trace.spans[static_cast<size_t>(r)];
    for (size_t k = 0; k < cols.size(); ++k) {
      const auto s = cols.at(k, r);
      if (s.category == storage::Category::Wait) continue;
      ++transfers;
      EXPECT_EQ(trace.name(s.name), "moe_allreduce");
      EXPECT_EQ(s.bytes, 5 * 4 + 3 * 8 + 2 * 4 + 4);
    }
    EXPECT_EQ(transfers, 1) << "rank " << r;
  }
}

TEST(ThreadCommunicator, AllToAllWithPerPeerCounts) {
  const int size = 3;
  ThreadWorld world(size);
  runRanks(size, [&](int r) {
    auto comm = world.communicator(r, {0, 1, 2});
    // Member r sends (r + q) values to member q, each value 100 r + q.
    std::vector<size_t> send_counts(size), recv_counts(size);
    std::vector<int32_t> send;
    for (int q = 0; q < size; ++q) {
      send_counts[static_cast<size_t>(q)] = static_cast<size_t>(r + q);
      recv_counts[static_cast<size_t>(q)] = static_cast<size_t>(q + r);
      for (int k = 0; k < r + q; ++k) send.push_back(100 * r + q);
    }
    std::vector<int32_t> recv(static_cast<size_t>(3 * r + 3));
    comm->allToAll(send.data(), send_counts.data(), recv.data(), recv_counts.data(), CommSpan{});
    size_t i = 0;
    for (int q = 0; q < size; ++q)
      for (int k = 0; k < q + r; ++k) EXPECT_EQ(recv[i++], 100 * q + r);
  });
}

TEST(ThreadCommunicator, SendRecvKeepsOrderAndBarrierSynchronises) {
  ThreadWorld world(4);
  // Two groups share the world: {0, 1} and {2, 3}; global rank 3 is member 1 of its group.
  runRanks(4, [&](int r) {
    auto pair = world.communicator(r, r < 2 ? std::vector<int>{0, 1} : std::vector<int>{2, 3});
    auto all = world.communicator(r, {0, 1, 2, 3});
    EXPECT_EQ(pair->rank(), r % 2);
    EXPECT_EQ(all->size(), 4);
    if (pair->rank() == 0) {
      for (int i = 0; i < 5; ++i) {
        float v[2] = {static_cast<float>(i), static_cast<float>(r)};
        pair->send(v, 2, 1, CommSpan{});
      }
    } else {
      for (int i = 0; i < 5; ++i) {
        float v[2];
        pair->recv(v, 2, 0, CommSpan{});
        EXPECT_EQ(v[0], i);
        EXPECT_EQ(v[1], r - 1);
      }
    }
    all->barrier(CommSpan{});
  });
}

TEST(ThreadCommunicator, AbortWakesBlockedMembers) {
  ThreadWorld world(2);
  int cancelled = 0;
  std::mutex mutex;
  runRanks(2, [&](int r) {
    auto comm = world.communicator(r, {0, 1});
    try {
      if (r == 0) {
        float v;
        comm->recv(&v, 1, 1, CommSpan{});  // never sent
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        world.abort("test");
        comm->barrier(CommSpan{});
      }
    } catch (const Cancelled&) {
      std::lock_guard lock(mutex);
      ++cancelled;
    }
  });
  EXPECT_EQ(cancelled, 2);
}

TEST(ThreadCommunicator, MismatchedCountsAreAnError) {
  ThreadWorld world(2);
  std::atomic<int> errors{0};
  runRanks(2, [&](int r) {
    auto comm = world.communicator(r, {0, 1});
    float v[4] = {};
    try {
      comm->send(v, 1, 1 - r, CommSpan{});
      comm->recv(v, r == 0 ? 1 : 2, 1 - r, CommSpan{});
    } catch (const std::runtime_error&) {
      ++errors;
    }
  });
  EXPECT_EQ(errors.load(), 1);
}

// Time blocked on a peer is a `wait` span that ends when the peer delivered; the transfer's own span
// follows it, with the call's attributes and bytes.
TEST(ThreadCommunicator, BlockedTimeIsAWaitSpanBeforeTheTransfer) {
  namespace fs = std::filesystem;
  const moescope::testing::TempRunFile file;
  const fs::path path = file.path();
  auto tracer = tracer::Tracer::open(path, storage::RunInfo{});
  tracer->addRank({.rank = 0});
  tracer->addRank({.rank = 1});
  tracer::TrackRecorder* tracks[2] = {tracer->hostTrack(0, "rank 0 host"),
                                      tracer->hostTrack(1, "rank 1 host")};
  ThreadWorld world(2);
  CommSpan span{"recv_activation",
                {.category = storage::Category::CommPpSendrecv,
                 .phase = storage::Phase::Forward,
                 .step = 3,
                 .microbatch = 1}};
  runRanks(2, [&](int r) {
    auto comm = world.communicator(r, {0, 1});
    comm->setRecorder(tracks[r]);
    float v[16] = {};
    if (r == 0) {
      comm->recv(v, 16, 1, span);  // blocks until rank 1 sends
      comm->barrier(CommSpan{"barrier", {.category = storage::Category::CommDpAllreduce}});
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      comm->send(v, 16, 0, CommSpan{"send_activation", {.category = storage::Category::CommPpSendrecv}});
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      comm->barrier(CommSpan{"barrier", {.category = storage::Category::CommDpAllreduce}});
    }
    tracks[r]->flush();
  });
  tracer->finish(storage::RunStatus::Complete, "");
  tracer.reset();
  const auto trace = storage::RunReader::open(path)->load();
  const auto& cols = trace.spans[0];
  ASSERT_EQ(cols.size(), 3u);  // wait, recv, wait (the barrier itself records no transfer)
  const auto wait = cols.at(0, 0), recv = cols.at(1, 0), barrier_wait = cols.at(2, 0);
  EXPECT_EQ(trace.name(wait.name), "wait");
  EXPECT_EQ(wait.category, storage::Category::Wait);
  EXPECT_EQ(wait.step, 3);
  EXPECT_EQ(wait.microbatch, 1);
  EXPECT_EQ(wait.phase, storage::Phase::Forward);
  EXPECT_EQ(wait.bytes, 0);
  EXPECT_GE(wait.duration(), 20'000'000);
  EXPECT_EQ(trace.name(recv.name), "recv_activation");
  EXPECT_EQ(recv.category, storage::Category::CommPpSendrecv);
  EXPECT_EQ(recv.bytes, 64);
  EXPECT_LE(wait.end, recv.start);
  EXPECT_EQ(trace.name(barrier_wait.name), "wait");
  EXPECT_GE(barrier_wait.duration(), 20'000'000);
  // The sender never waited: its send, then its barrier arrival released rank 0.
  ASSERT_EQ(trace.spans[1].size(), 1u);
  EXPECT_EQ(trace.name(trace.spans[1].at(0, 1).name), "send_activation");
}

}  // namespace
}  // namespace moescope::engine
