#include "engine/cuda/nccl_communicator.h"

#include <cstdlib>
#include <functional>
#include <thread>

#include "base/run_tasks.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace moescope::engine::cuda::test {
namespace {

// Skips unless `n` GPUs are present.
#define MOESCOPE_SKIP_WITHOUT_GPUS(n)                                                               \
  do {                                                                                              \
    MOESCOPE_SKIP_WITHOUT_CUDA_DEVICE();                                                            \
    int moescope_gpus_ = 0;                                                                         \
    cudaGetDeviceCount(&moescope_gpus_);                                                            \
    if (moescope_gpus_ < (n)) GTEST_SKIP() << "needs " << (n) << " GPUs, found " << moescope_gpus_; \
  } while (0)

// Runs body(rank, communicator) on one thread per GPU, every rank in one group; no rank may fail.
void onRanks(int n, const std::function<void(int, NcclCommunicator&)>& body) {
  std::vector<int> devices(static_cast<size_t>(n)), group(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) devices[static_cast<size_t>(r)] = group[static_cast<size_t>(r)] = r;
  NcclWorld world(devices);
  EXPECT_NO_THROW(runTasks(
      n,
      [&](int r) {
        auto comm = world.communicator(r, group);
        body(r, static_cast<NcclCommunicator&>(*comm));
      },
      [&] { world.abort("failed"); }));
}

TEST(NcclCommunicator, LeavesNvlinkMulticastOff) {
  configureNcclEnvironment();
  ASSERT_NE(std::getenv("NCCL_NVLS_ENABLE"), nullptr);
}

TEST(NcclCommunicator, AllReduceSumsOverTheGroup) {
  MOESCOPE_SKIP_WITHOUT_GPUS(2);
  std::vector<std::vector<float>> got(2);
  onRanks(2, [&](int r, NcclCommunicator& comm) {
    EXPECT_EQ(comm.size(), 2);
    EXPECT_EQ(comm.rank(), r);
    std::vector<float> host(1000);
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i) * (r + 1);
    DeviceBuffer<float> buf(host.size());
    buf.upload(host);
    comm.allReduceSum(buf.get(), host.size(), CommSpan{});
    got[static_cast<size_t>(r)] = buf.download();
  });
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(got[static_cast<size_t>(r)].size(), 1000u);
    for (size_t i = 0; i < 1000; ++i) EXPECT_EQ(got[static_cast<size_t>(r)][i], static_cast<float>(i) * 3);
  }
}

// A bf16 array and an fp32 array reduced in one call (one NCCL group), each in its own type.
TEST(NcclCommunicator, AllReduceSumsABf16AndAnFp32ArrayInOneCall) {
  MOESCOPE_SKIP_WITHOUT_GPUS(2);
  std::vector<std::vector<float>> halves(2), singles(2);
  onRanks(2, [&](int r, NcclCommunicator& comm) {
    DeviceBuffer<Bf16> h(3000);
    DeviceBuffer<float> f(500);
    uploadAs(h, std::vector<float>(3000, 0.5f * static_cast<float>(r + 1)));
    f.upload(std::vector<float>(500, 0.25f * static_cast<float>(r + 1)));
    const CommBuffer parts[] = {{h.get(), 3000, DType::BF16}, {f.get(), 500, DType::F32}};
    comm.allReduceSum(parts, CommSpan{});
    halves[static_cast<size_t>(r)] = downloadAsFloat(h);
    singles[static_cast<size_t>(r)] = f.download();
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(halves[static_cast<size_t>(r)], std::vector<float>(3000, 1.5f)) << "rank " << r;
    EXPECT_EQ(singles[static_cast<size_t>(r)], std::vector<float>(500, 0.75f)) << "rank " << r;
  }
}

TEST(NcclCommunicator, AllToAllWithUnevenCounts) {
  MOESCOPE_SKIP_WITHOUT_GPUS(2);
  // Rank r sends (r + 1) * (q + 2) elements to q, valued 1000 r + 100 q + i.
  auto count = [](int from, int to) { return static_cast<size_t>((from + 1) * (to + 2)); };
  std::vector<std::vector<int32_t>> got(2);
  onRanks(2, [&](int r, NcclCommunicator& comm) {
    std::vector<size_t> sendCounts(2), recvCounts(2);
    std::vector<int32_t> send;
    for (int q = 0; q < 2; ++q) {
      sendCounts[static_cast<size_t>(q)] = count(r, q);
      recvCounts[static_cast<size_t>(q)] = count(q, r);
      for (size_t i = 0; i < count(r, q); ++i) send.push_back(1000 * r + 100 * q + static_cast<int32_t>(i));
    }
    DeviceBuffer<int32_t> dSend(send.size()), dRecv(recvCounts[0] + recvCounts[1]);
    dSend.upload(send);
    dRecv.poison();
    cudaStream_t stream;
    MOESCOPE_CUDA_CHECK(cudaStreamCreate(&stream));
    comm.setStream(stream);
    comm.allToAll(dSend.get(), sendCounts.data(), dRecv.get(), recvCounts.data(), CommSpan{});
    MOESCOPE_CUDA_CHECK(cudaStreamSynchronize(stream));
    got[static_cast<size_t>(r)] = dRecv.download();
    MOESCOPE_CUDA_CHECK(cudaStreamDestroy(stream));
  });
  for (int r = 0; r < 2; ++r) {
    std::vector<int32_t> want;
    for (int q = 0; q < 2; ++q)
      for (size_t i = 0; i < count(q, r); ++i) want.push_back(1000 * q + 100 * r + static_cast<int32_t>(i));
    EXPECT_EQ(got[static_cast<size_t>(r)], want) << "rank " << r;
  }
}

TEST(NcclCommunicator, SendAndReceiveBothWaysWithoutDeadlock) {
  MOESCOPE_SKIP_WITHOUT_GPUS(2);
  // Like a pipeline's 1F1B: rank 0 sends two messages before it receives; rank 1 sends one back between.
  std::vector<std::vector<float>> got(2);
  onRanks(2, [&](int r, NcclCommunicator& comm) {
    const size_t n = 1 << 20;
    DeviceBuffer<float> a(n), b(n), c(n);
    uploadAs(a, std::vector<float>(n, 1.0f + r));
    uploadAs(b, std::vector<float>(n, 3.0f + r));
    c.poison();
    if (r == 0) {
      comm.send(a.get(), n, 1, CommSpan{});
      comm.send(b.get(), n, 1, CommSpan{});
      comm.recv(c.get(), n, 1, CommSpan{});
    } else {
      comm.recv(c.get(), n, 0, CommSpan{});
      comm.send(a.get(), n, 0, CommSpan{});
      comm.recv(b.get(), n, 0, CommSpan{});
    }
    comm.barrier(CommSpan{});
    std::vector<float> out = c.download();
    std::vector<float> second = b.download();
    out.push_back(second[0]);
    got[static_cast<size_t>(r)] = {out.front(), out[n - 1], out.back()};
  });
  EXPECT_EQ(got[0], (std::vector<float>{2.0f, 2.0f, 3.0f}));  // c from rank 1's a; b unchanged
  EXPECT_EQ(got[1], (std::vector<float>{1.0f, 1.0f, 3.0f}));  // c from rank 0's a, b from rank 0's b
}

}  // namespace
}  // namespace moescope::engine::cuda::test
