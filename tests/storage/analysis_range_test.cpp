// An area selection's sums: spans of the chosen tracks cut to the range, by category, by name and by
// GPU kernel, each with count, total, mean, max and share.
#include "storage/analysis_range.h"

#include <gtest/gtest.h>

#include "storage/trace.h"

namespace moescope::storage {
namespace {

// Track 0 (host, rank 0), track 1 (host, rank 1), track 2 (GPU stream of rank 0). Names: 0 "attn",
// 1 "expert", 2 "gemm", 3 "nccl".
//   track 0: attn [0, 100)  attn [100, 300)  expert [300, 400)
//   track 1: expert [0, 1000)
//   track 2: gemm [50, 80) launched by span 10 (attention), nccl [150, 250) by span 11 (tp all-reduce),
//            a copy [500, 600) no span launched
Trace trace() {
  Trace t;
  t.strings = {"attn", "expert", "gemm", "nccl", "memcpy"};
  for (int32_t id = 0; id < 3; ++id) {
    TrackInfo info;
    info.id = id;
    info.rank = id == 1 ? 1 : 0;
    info.kind = id == 2 ? TrackKind::GpuStream : TrackKind::HostThread;
    t.tracks.push_back(info);
  }
  auto span = [&](int32_t track, int64_t a, int64_t b, uint32_t name, Category c) {
    addSpan(t, {.track = track, .start = a, .end = b, .name = name, .category = c});
  };
  span(0, 0, 100, 0, Category::ComputeAttention);
  span(0, 100, 300, 0, Category::ComputeAttention);
  span(0, 300, 400, 1, Category::ComputeExpert);
  span(1, 0, 1000, 1, Category::ComputeExpert);
  t.linked = {{10, {.track = 0, .start = 0, .end = 100, .name = 0, .category = Category::ComputeAttention}},
              {11, {.track = 0, .start = 100, .end = 300, .name = 0, .category = Category::CommTpAllreduce}}};
  auto gpu = [&](int64_t a, int64_t b, uint32_t name, int64_t launcher) {
    GpuActivityRecord g;
    g.track = 2;
    g.start = a;
    g.end = b;
    g.name = name;
    g.span = launcher;
    t.gpu.push_back(g);
  };
  gpu(50, 80, 2, 10);
  gpu(150, 250, 3, 11);
  gpu(500, 600, 4, kNone);
  finishTrace(t);
  return t;
}

const RangeRow* row(const std::vector<RangeRow>& rows, const std::string& label) {
  for (const RangeRow& r : rows)
    if (r.label == label) return &r;
  return nullptr;
}

TEST(AnalysisRange, SpansAreCutToTheRange) {
  // [50, 350) over the host tracks: attn 50 + 200 = 250 ns in 2 spans (max 200), expert 50 (track 0)
  // + 300 (track 1) = 350 ns in 2 spans.
  const Trace t = trace();
  const std::vector<int32_t> tracks = {0, 1};
  const RangeSummary s = summarizeRange(t, tracks, 50, 350);
  EXPECT_EQ(s.hostSpans, 4);
  ASSERT_EQ(s.hostCategories.size(), 2u);
  EXPECT_EQ(s.hostCategories[0], (RangeRow{"compute.expert", 2, 350, 300, 175.0, 350.0 / 600}));
  EXPECT_EQ(s.hostCategories[1], (RangeRow{"compute.attention", 2, 250, 200, 125.0, 250.0 / 600}));
  EXPECT_EQ(*row(s.names, "attn"), (RangeRow{"attn", 2, 250, 200, 125.0, 250.0 / 600}));
  EXPECT_TRUE(s.kernels.empty());  // no GPU stream chosen
  EXPECT_EQ(s.gpuRecords, 0);
}

TEST(AnalysisRange, OnlyTheChosenTracks) {
  const Trace t = trace();
  const std::vector<int32_t> tracks = {1};
  const RangeSummary s = summarizeRange(t, tracks, 0, 2000);
  ASSERT_EQ(s.hostCategories.size(), 1u);
  EXPECT_EQ(s.hostCategories[0].label, "compute.expert");
  EXPECT_EQ(s.hostCategories[0].total_ns, 1000);
  EXPECT_DOUBLE_EQ(s.hostCategories[0].share, 1.0);
}

TEST(AnalysisRange, GpuRecordsByKernelAndByTheirLaunchingSpansCategory) {
  const Trace t = trace();
  const std::vector<int32_t> tracks = {2};
  // [0, 550): gemm 30 ns (attention), nccl 100 ns (tp all-reduce), the copy 50 ns (no category).
  const RangeSummary s = summarizeRange(t, tracks, 0, 550);
  EXPECT_EQ(s.gpuRecords, 3);
  EXPECT_EQ(s.hostSpans, 0);
  ASSERT_EQ(s.kernels.size(), 3u);
  EXPECT_EQ(s.kernels[0].label, "nccl");
  EXPECT_EQ(s.kernels[1].label, "memcpy");
  EXPECT_EQ(s.kernels[1].total_ns, 50);
  EXPECT_EQ(s.kernels[2].label, "gemm");
  ASSERT_EQ(s.gpuCategories.size(), 2u);
  EXPECT_EQ(*row(s.gpuCategories, "comm.tp_allreduce"),
            (RangeRow{"comm.tp_allreduce", 1, 100, 100, 100.0, 100.0 / 130}));
  EXPECT_EQ(row(s.gpuCategories, "compute.attention")->total_ns, 30);
}

TEST(AnalysisRange, AnEmptyRangeOrUnknownTracksSumNothing) {
  const Trace t = trace();
  const std::vector<int32_t> tracks = {0, 1, 2, 7, -1};
  EXPECT_EQ(summarizeRange(t, tracks, 300, 300), (RangeSummary{300, 300}));
  EXPECT_EQ(summarizeRange(t, tracks, 5000, 6000).hostSpans, 0);
  EXPECT_EQ(spansInRange(t, tracks, 0, 2000), 4);
}

}  // namespace
}  // namespace moescope::storage
