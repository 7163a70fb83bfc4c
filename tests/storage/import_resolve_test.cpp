// What events mean, on traces built in memory: a collective's category from its group and the layout
// (and from its kernel's name where PyTorch calls it "coalesced"), passed to the call that launched it;
// a launch found by its flow where the kernel has no correlation id; a kernel with neither.
#include "storage/import_resolve.h"

#include <gtest/gtest.h>

namespace moescope::storage {
namespace {

struct Builder {
  NameTable names;
  KinetoFile file;
  std::vector<NameFields> cache;
  std::vector<bool> cached;

  Builder() {
    file.tracks = {{false, 1, 1}, {true, 0, 7}};  // host thread, GPU 0 stream 7
  }
  uint32_t add(KinetoKind kind, std::string_view name, int64_t ts, int64_t dur, int64_t correlation = 0) {
    KinetoEvent e;
    e.kind = kind;
    e.name = names.intern(name);
    e.track = isGpuKind(kind) ? 1 : 0;
    e.ts = ts;
    e.dur = dur;
    e.correlation = correlation;
    file.events.push_back(e);
    return static_cast<uint32_t>(file.events.size() - 1);
  }
  void collective(uint32_t event, KinetoCollective c) {
    file.events[event].collective = static_cast<int32_t>(file.collectives.size());
    file.collectives.push_back(std::move(c));
  }
  RankResolution resolve(ParallelLayout layout, const RuleSet& rules) {
    ResolveContext ctx{rules, names, cache, cached, layout, Schedule::OneFOneB};
    return resolveRank(file, 0, ctx);
  }
};

KinetoCollective group(std::string name, std::vector<int32_t> ranks, int32_t dst = -1) {
  KinetoCollective c;
  c.name = std::move(name);
  c.dtype = "BFloat16";
  c.in_nelems = c.out_nelems = 100;
  c.ranks = std::move(ranks);
  c.dst = dst;
  return c;
}

TEST(ImportResolve, CollectivesTakeTheirGroupsCategoryAndGiveItToTheirLaunch) {
  const RuleSet none;  // no names known: only the groups speak
  Builder b;
  const uint32_t op = b.add(KinetoKind::CpuOp, "record_param_comms", 0, 100);
  b.collective(op, group("allreduce", {0, 1}));
  const uint32_t launch = b.add(KinetoKind::CudaRuntime, "cudaLaunchKernelExC", 10, 5, 1);
  const uint32_t kernel = b.add(KinetoKind::Kernel, "ncclDevKernel_AllReduce_Sum_bf16_RING_LL", 200, 50, 1);
  b.collective(kernel, group("allreduce", {0, 1}));
  // PyTorch names a batch_isend_irecv "coalesced"; its kernel and its destination say point to point.
  const uint32_t launch2 = b.add(KinetoKind::CudaRuntime, "cudaLaunchKernelExC", 300, 5, 2);
  const uint32_t p2p =
      b.add(KinetoKind::Kernel, "ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)", 400, 50, 2);
  b.collective(p2p, group("coalesced", {0, 1}, 1));
  const uint32_t plain = b.add(KinetoKind::CpuOp, "aten::mm", 500, 10);

  const RankResolution tp = b.resolve(ParallelLayout{1, 2, 1}, none);
  EXPECT_EQ(tp.fields[op].category, Category::CommTpAllreduce);
  EXPECT_EQ(tp.fields[launch].category, Category::CommTpAllreduce);  // from its kernel (and its op)
  EXPECT_EQ(tp.launch[kernel], launch);
  EXPECT_EQ(tp.bytes.at(kernel), 200);
  EXPECT_EQ(tp.bytes.at(launch), 200);
  EXPECT_EQ(tp.fields[launch2].category, Category::CommPpSendrecv);
  EXPECT_EQ(tp.fields[plain].category, Category::User);
  EXPECT_EQ(tp.counts.collectives, 3);
  EXPECT_EQ(tp.counts.user_spans, 1);

  // The same group is data-parallel when the layout says the two ranks are replicas.
  const RankResolution dp = b.resolve(ParallelLayout{1, 1, 2}, none);
  EXPECT_EQ(dp.fields[launch].category, Category::CommDpAllreduce);
  EXPECT_EQ(dp.device, 0);
}

TEST(ImportResolve, LaunchesByFlowAndKernelsWithoutOne) {
  const RuleSet none;
  Builder b;
  const uint32_t launch = b.add(KinetoKind::CudaRuntime, "cudaLaunchKernel", 10, 5);  // no correlation
  const uint32_t kernel = b.add(KinetoKind::Kernel, "gemm", 100, 20);
  const uint32_t orphan = b.add(KinetoKind::Kernel, "gemm", 200, 20, 77);
  b.file.flow_starts.push_back({5, 0, 10});
  b.file.flow_ends.push_back({5, 1, 100});
  const RankResolution r = b.resolve(ParallelLayout{}, none);
  EXPECT_EQ(r.launch[kernel], launch);
  EXPECT_EQ(r.launch[orphan], kNoEvent);
  EXPECT_EQ(r.counts.linked_by_flow, 1);
  EXPECT_EQ(r.counts.unlinked, 1);
}

}  // namespace
}  // namespace moescope::storage
