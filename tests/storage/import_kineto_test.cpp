// Reading one Kineto trace into columns: the same result through a window small enough that every key
// and value crosses a refill (a key read before its value must not be read after it moved), the fields
// kept of each kind of event, and the small parsers of Kineto's text fields.
#include "storage/import_kineto.h"

#include <gtest/gtest.h>

#include "storage/import_input.h"

namespace moescope::storage {
namespace {

const std::filesystem::path kData = std::filesystem::path(MOESCOPE_SOURCE_DIR) / "tests/storage/kineto";

KinetoFile read(const std::filesystem::path& path, NameTable& names, size_t window) {
  auto in = TraceInput::open(path);
  KinetoReadOptions o;
  o.window = window;
  return readKinetoTrace(*in, names, o);
}

void expectSame(const KinetoFile& a, const KinetoFile& b) {
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.tracks, b.tracks);
  EXPECT_EQ(a.collectives, b.collectives);
  EXPECT_EQ(a.flow_starts, b.flow_starts);
  EXPECT_EQ(a.flow_ends, b.flow_ends);
  EXPECT_EQ(a.thread_names, b.thread_names);
  EXPECT_EQ(a.distributed, b.distributed);
  EXPECT_EQ(a.devices, b.devices);
  EXPECT_EQ(a.counts, b.counts);
  EXPECT_EQ(a.base_time_ns, b.base_time_ns);
}

TEST(ImportKineto, SmallWindowsReadTheSame) {
  for (const char* f : {"pp2-rank0.json", "pp2-rank1.json", "unknown-categories.json"}) {
    NameTable names;
    const KinetoFile whole = read(kData / f, names, 1 << 20);
    for (size_t window : {64, 71, 128}) expectSame(read(kData / f, names, window), whole);
  }
}

TEST(ImportKineto, WhatIsKeptOfATrace) {
  NameTable names;
  const KinetoFile f = read(kData / "pp2-rank0.json", names, 1 << 20);
  EXPECT_EQ(f.schema_version, 1);
  EXPECT_EQ(f.base_time_ns, 1700000000000000000);
  ASSERT_TRUE(f.distributed.has_value());
  EXPECT_EQ(f.distributed->rank, 0);
  EXPECT_EQ(f.distributed->world_size, 2);
  EXPECT_EQ(f.distributed->nccl_version, "2.28.3");
  ASSERT_EQ(f.distributed->groups.size(), 1u);
  EXPECT_EQ(f.distributed->groups[0], (KinetoProcessGroup{"0", "default_pg", 2, {0, 1}}));
  ASSERT_EQ(f.devices.size(), 1u);
  EXPECT_EQ(f.devices[0], (KinetoDevice{0, "NVIDIA H200", 150754820096, 132}));
  const KinetoCounts& c = f.counts;
  EXPECT_EQ(c.events, 66);
  EXPECT_EQ(c.kept[static_cast<size_t>(KinetoKind::Kernel)], 8);
  EXPECT_EQ(c.kept[static_cast<size_t>(KinetoKind::CudaRuntime)], 10);
  EXPECT_EQ(c.kept[static_cast<size_t>(KinetoKind::PythonFunction)], 7);
  EXPECT_EQ(c.kept[static_cast<size_t>(KinetoKind::GpuUserAnnotation)], 1);
  EXPECT_EQ(c.flow_starts, 10);
  EXPECT_EQ(c.flow_ends, 10);
  EXPECT_EQ(c.metadata, 5);
  EXPECT_EQ(c.instants, 2);
  EXPECT_EQ(c.profiler_spans, 1);
  EXPECT_EQ(c.zero_durations, 1);
  // The first NCCL kernel: on GPU 0's stream 20, with its collective fields.
  const auto nccl = std::find_if(f.events.begin(), f.events.end(), [&](const KinetoEvent& e) {
    return e.kind == KinetoKind::Kernel && names.text(e.name).starts_with("ncclDevKernel_SendRecv");
  });
  ASSERT_NE(nccl, f.events.end());
  EXPECT_EQ(f.tracks[nccl->track], (KinetoTrack{true, 0, 20}));
  EXPECT_EQ(nccl->ts, 140000);
  EXPECT_EQ(nccl->dur, 30000);
  EXPECT_EQ(nccl->correlation, 3);
  ASSERT_GE(nccl->collective, 0);
  KinetoCollective expected;
  expected.name = "send";
  expected.dtype = "BFloat16";
  expected.in_nelems = expected.out_nelems = 1024;
  expected.group_size = 2;
  expected.ranks = {0, 1};
  expected.group_name = "0";
  expected.group_desc = "default_pg";
  expected.dst = 1;
  EXPECT_EQ(f.collectives[static_cast<size_t>(nccl->collective)], expected);
  EXPECT_EQ(f.thread_names.at({100, 101}), "thread 101 (pt_autograd_0)");
}

TEST(ImportKineto, RankListsAndDtypes) {
  EXPECT_EQ(parseRankList("[0, 1, 2, 3]"), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(parseRankList("4,12"), (std::vector<int32_t>{4, 12}));
  EXPECT_TRUE(parseRankList("[]").empty());
  EXPECT_EQ(dtypeBytes("BFloat16"), 2);
  EXPECT_EQ(dtypeBytes("Float"), 4);
  EXPECT_EQ(dtypeBytes("Float8_e4m3fn"), 1);
  EXPECT_EQ(dtypeBytes("Long"), 8);
  EXPECT_EQ(dtypeBytes("Quaternion"), 0);
}

}  // namespace
}  // namespace moescope::storage
