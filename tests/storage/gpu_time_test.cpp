// GPU records in a run file: read back with the spans they point at, GPU extents beside host extents,
// GPU activity for the analysis, the stats' GPU section and the Chrome export's GPU processes and flows.
#include "storage/gpu_time.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "storage/export_chrome.h"
#include "storage/run_reader.h"
#include "storage/run_writer.h"
#include "storage/stats_report.h"
#include "tests/common/temp_dir.h"
#include "tests/storage/gpu_run_checks.h"

namespace moescope::storage {
namespace {

using nlohmann::json;

// Rank 0 (stage 0, GPU 0) and rank 1 (stage 0, GPU 1), one host track each and one GPU stream each.
// Step 0 on each rank: an expert span launching two kernels, an all-reduce launching one; a kernel
// outside any span on GPU 0.
void writeGpuRun(const std::filesystem::path& path) {
  RunInfo run;
  run.name = "gpu";
  run.backend = "cuda";
  run.tp = 2;
  auto w = RunWriter::create(path, run);
  w->addRank({.rank = 0, .stage = 0, .tp_rank = 0, .device = 0});
  w->addRank({.rank = 1, .stage = 0, .tp_rank = 1, .device = 1});
  w->addTrack({.rank = 0, .kind = TrackKind::HostThread, .name = "rank 0 host"});
  w->addTrack({.rank = 1, .kind = TrackKind::HostThread, .name = "rank 1 host"});
  w->addTrack({.rank = 0,
               .kind = TrackKind::GpuStream,
               .name = "GPU 0 stream 7",
               .order = 1,
               .device = 0,
               .stream = 7});
  w->addTrack({.rank = 1,
               .kind = TrackKind::GpuStream,
               .name = "GPU 1 stream 9",
               .order = 1,
               .device = 1,
               .stream = 9});
  const uint32_t expert = w->intern("expert"), allreduce = w->intern("tp_allreduce"),
                 gemm = w->intern("gemm"), nccl = w->intern("ncclDevKernel_AllReduce_Sum_f32_RING_LL"),
                 other = w->intern("other");
  std::vector<SpanRecord> spans;
  for (int32_t r = 0; r < 2; ++r) {
    spans.push_back({r, 1000, 2000, expert, Category::ComputeExpert, Phase::Forward, 0, 0, 1, r});
    spans.push_back(
        {r, 2000, 3000, allreduce, Category::CommTpAllreduce, Phase::Forward, 0, 0, 1, kNone, 4096});
  }
  EXPECT_EQ(w->addSpans(spans), 0);  // ids: rank 0 expert 0, all-reduce 1; rank 1 expert 2, all-reduce 3
  std::vector<GpuActivityRecord> gpu;
  for (int32_t r = 0; r < 2; ++r) {
    const int32_t track = 2 + r;
    const int64_t stream = r == 0 ? 7 : 9;
    gpu.push_back({track, 1500, 1800, gemm, GpuActivityKind::Kernel, r, stream, 11, 2 * r});
    gpu.push_back({track, 1900, 2600, gemm, GpuActivityKind::Kernel, r, stream, 12, 2 * r});
    gpu.push_back({track, 2700, 2900, nccl, GpuActivityKind::Kernel, r, stream, 13, 2 * r + 1});
  }
  gpu.push_back({2, 3500, 3600, other, GpuActivityKind::Kernel, 0, 7, 14, kNone});
  w->addGpuActivity(gpu);
  w->addStepMetric({.step = 0, .tokens = 64, .step_ms = 0.002, .start_ns = 1000, .end_ns = 3000});
  w->setMeta("cupti.dropped_records", "0");
  w->setStatus(RunStatus::Complete, "", 4000);
  w->commit();
}

TEST(GpuTime, RecordsReadBackWithTheSpansTheyPointAt) {
  testing::TempRunFile file;
  writeGpuRun(file.path());
  const Trace t = RunReader::open(file.path())->load();
  ASSERT_EQ(t.gpu.size(), 7u);
  ASSERT_EQ(t.linked.size(), 4u);
  const LinkedSpan* l = t.linkedSpan(3);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->span.track, 1);
  EXPECT_EQ(l->span.category, Category::CommTpAllreduce);
  EXPECT_EQ(l->span.bytes, 4096);
  EXPECT_EQ(t.linkedSpan(kNone), nullptr);
  EXPECT_EQ(t.linkedSpan(99), nullptr);
  // The stream tracks' spans are their records with the launching spans' attributes; the record
  // launched outside any span is not among them.
  ASSERT_EQ(t.spans[2].size(), 3u);
  ASSERT_EQ(t.spans[3].size(), 3u);
  const SpanView k = t.spans[3].at(2, 3);
  EXPECT_EQ(t.name(k.name), "ncclDevKernel_AllReduce_Sum_f32_RING_LL");
  EXPECT_EQ(k.start, 2700);
  EXPECT_EQ(k.end, 2900);
  EXPECT_EQ(k.category, Category::CommTpAllreduce);
  EXPECT_EQ(k.step, 0);
  EXPECT_EQ(k.layer, 1);
  EXPECT_EQ(computeStats(t).spans, 4);  // host spans only
  // A window keeps the spans of the records inside it.
  const Trace w = RunReader::open(file.path())->loadWindow(2650, 2800);
  ASSERT_EQ(w.gpu.size(), 2u);
  ASSERT_EQ(w.linked.size(), 2u);
  EXPECT_EQ(w.linked[0].id, 1);
  EXPECT_EQ(w.linked[1].id, 3);
}

TEST(GpuTime, EachSpanHasItsGpuExtentBesideItsHostExtent) {
  testing::TempRunFile file;
  writeGpuRun(file.path());
  const Trace t = RunReader::open(file.path())->load();
  const auto extents = gpuExtents(t);
  ASSERT_EQ(extents.size(), 4u);
  const SpanGpuExtent* e = findGpuExtent(extents, 2);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->track, 1);
  EXPECT_EQ(e->category, Category::ComputeExpert);
  EXPECT_EQ(e->host_start, 1000);
  EXPECT_EQ(e->host_end, 2000);
  EXPECT_EQ(e->gpu_start, 1500);
  EXPECT_EQ(e->gpu_end, 2600);  // the second kernel runs on past the span's host end
  EXPECT_EQ(e->gpu_busy_ns, 300 + 700);
  EXPECT_EQ(e->records, 2);
  EXPECT_EQ(e->kernels, 2);
  EXPECT_EQ(findGpuExtent(extents, 7), nullptr);
}

TEST(GpuTime, ActivityPerRankHasTheLaunchingSpansCategories) {
  testing::TempRunFile file;
  writeGpuRun(file.path());
  const Trace t = RunReader::open(file.path())->load();
  const auto ranks = gpuActivity(t);
  ASSERT_EQ(ranks.size(), 2u);
  ASSERT_EQ(ranks[1].items.size(), 3u);  // the kernel outside any span is left out
  EXPECT_EQ(ranks[1].items[0], (Activity{1500, 1800, Category::ComputeExpert, 0, 0}));
  EXPECT_EQ(ranks[1].items[2].category, Category::CommTpAllreduce);
  EXPECT_EQ(gpuRecordCounts(t), (GpuRecordCounts{7, 1, 0}));
}

TEST(GpuTime, StatsReportGpuTimeByCategoryPerStage) {
  testing::TempRunFile file;
  writeGpuRun(file.path());
  const RunStats s = computeStats(RunReader::open(file.path())->load());
  ASSERT_EQ(s.gpu_stages.size(), 1u);
  EXPECT_EQ(s.gpu_stages[0].busy_per_step[Category::ComputeExpert], 1000);
  EXPECT_EQ(s.gpu_stages[0].busy_per_step[Category::CommTpAllreduce], 200);
  EXPECT_EQ(s.gpu_stages[0].busy_ns_per_step, 1200);
  const json j = statsToJson(s);
  ASSERT_TRUE(j.contains("gpu"));
  EXPECT_EQ(j["gpu"]["records"], 7);
  EXPECT_EQ(j["gpu"]["dropped"], 0);
  EXPECT_EQ(j["gpu"]["stages"][0]["busy_by_category_ns_per_step"]["compute.expert"], 1000);
  const std::string text = formatStats(s);
  EXPECT_NE(text.find("GPU time per step by category"), std::string::npos) << text;
  EXPECT_NE(text.find("0 dropped by CUPTI"), std::string::npos) << text;
}

// Each kernel summed over both GPUs, the one outside any span included, the largest total first.
TEST(GpuTime, KernelTotalsSumEveryRecordByName) {
  testing::TempRunFile file;
  writeGpuRun(file.path());
  const RunStats s = computeStats(RunReader::open(file.path())->load());
  ASSERT_EQ(s.gpu_kernels.size(), 3u);
  const KernelTotal& gemm = s.gpu_kernels[0];
  EXPECT_EQ(gemm.name, "gemm");
  EXPECT_EQ(gemm.kind, GpuActivityKind::Kernel);
  EXPECT_EQ(gemm.count, 4);
  EXPECT_EQ(gemm.total_ns, 2000);  // 300 + 700 on each GPU
  EXPECT_EQ(gemm.min_ns, 300);
  EXPECT_EQ(gemm.max_ns, 700);
  EXPECT_DOUBLE_EQ(gemm.share, 0.8);  // of 2500 ns in all
  EXPECT_EQ(s.gpu_kernels[1].name, "ncclDevKernel_AllReduce_Sum_f32_RING_LL");
  EXPECT_EQ(s.gpu_kernels[1].total_ns, 400);
  EXPECT_EQ(s.gpu_kernels[2].name, "other");
  EXPECT_EQ(s.gpu_kernels[2].count, 1);
  const json j = statsToJson(s);
  ASSERT_EQ(j["gpu"]["kernels"].size(), 3u);
  EXPECT_EQ(j["gpu"]["kernels"][0]["name"], "gemm");
  EXPECT_EQ(j["gpu"]["kernels"][0]["kind"], "kernel");
  EXPECT_EQ(j["gpu"]["kernels"][1]["total_ns"], 400);
  const std::string text = formatStats(s);
  const size_t table = text.find("GPU time by kernel");
  ASSERT_NE(table, std::string::npos) << text;
  EXPECT_LT(text.find("gemm", table), text.find("ncclDevKernel", table)) << text;
  EXPECT_NE(text.find("80.0%", table), std::string::npos) << text;
}

TEST(GpuTime, StatsOfAHostOnlyRunHaveNoGpuSection) {
  Trace t;
  t.tracks.push_back({0, 0, TrackKind::HostThread, "rank 0 host"});
  addSpan(t, {0, 0, 10, 0, Category::ComputeExpert, Phase::Forward, 0});
  finishTrace(t);
  const RunStats s = computeStats(t);
  EXPECT_TRUE(s.gpu_stages.empty());
  EXPECT_FALSE(statsToJson(s).contains("gpu"));
  EXPECT_EQ(formatStats(s).find("GPU"), std::string::npos);
}

TEST(GpuTime, ChromeExportPutsKernelsOnStreamsOfAProcessPerGpuWithFlowsFromTheirSpans) {
  testing::TempRunFile file;
  writeGpuRun(file.path());
  const Trace t = RunReader::open(file.path())->load();
  std::ostringstream out;
  exportChromeTrace(t, out);
  const json j = json::parse(out.str());
  std::map<int, std::string> processes;
  std::map<std::pair<int, int>, std::string> threads;
  for (const json& e : j["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name") processes[e["pid"]] = e["args"]["name"];
    if (e["ph"] == "M" && e["name"] == "thread_name")
      threads[std::make_pair(e["pid"].get<int>(), e["tid"].get<int>())] = e["args"]["name"];
  }
  std::set<int> gpuPids;
  for (const auto& [pid, name] : processes)
    if (name.rfind("GPU ", 0) == 0) gpuPids.insert(pid);
  ASSERT_EQ(gpuPids.size(), 2u);
  int kernels = 0;
  std::map<int64_t, json> starts, finishes;
  for (const json& e : j["traceEvents"]) {
    if (e["ph"] == "X" && e["cat"] == "gpu.kernel") {
      ++kernels;
      EXPECT_TRUE(gpuPids.count(e["pid"])) << e.dump();
      const std::string thread = threads[std::make_pair(e["pid"].get<int>(), e["tid"].get<int>())];
      EXPECT_EQ(thread.rfind("stream ", 0), 0u) << e.dump();
    }
    if (e["ph"] == "X" && e["cat"] == "compute.expert") {
      EXPECT_FALSE(gpuPids.count(e["pid"])) << e.dump();
    }
    if (e["ph"] == "s") starts[e["id"]] = e;
    if (e["ph"] == "f") finishes[e["id"]] = e;
  }
  EXPECT_EQ(kernels, 7);
  ASSERT_EQ(starts.size(), 6u);  // one arrow per kernel launched inside a span
  ASSERT_EQ(finishes.size(), 6u);
  for (const auto& [id, s] : starts) {
    const json& f = finishes.at(id);
    EXPECT_FALSE(gpuPids.count(s["pid"]));
    EXPECT_TRUE(gpuPids.count(f["pid"]));
    EXPECT_EQ(f["bp"], "e");
    EXPECT_LE(s["ts"].get<double>(), f["ts"].get<double>());
  }
}

}  // namespace
}  // namespace moescope::storage

namespace moescope::storage {
namespace {

// The run file made on the 2 x H200 server (samples/README.md says how): PPMoE, tp 2, a few steps.
TEST(GpuTime, TheH200SampleTiesKernelsToTheirSpans) {
  const std::filesystem::path sample =
      std::filesystem::path(MOESCOPE_SOURCE_DIR) / "samples/ppmoe-tp2-h200.moescope";
  if (!std::filesystem::exists(sample)) GTEST_SKIP() << "no " << sample;
  const Trace t = RunReader::open(sample)->load();
  EXPECT_EQ(t.run.backend, "cuda");
  const testing::GpuRunCheck c = testing::checkGpuRun(t);
  EXPECT_GT(c.allreduceSpans, 0);
  EXPECT_EQ(c.allreduceWithNccl, c.allreduceSpans) << c.kernels;
  EXPECT_GT(c.expertSpans, 0);
  EXPECT_GT(c.expertWithRecords, c.expertSpans / 2);
  EXPECT_EQ(c.expertWithMatmul, c.expertWithRecords) << c.kernels;
  const RunStats s = computeStats(t);
  ASSERT_FALSE(s.gpu_stages.empty());
  EXPECT_GT(s.gpu_stages[0].busy_per_step[Category::ComputeExpert], 0);
  EXPECT_GT(s.gpu_stages[0].busy_per_step[Category::CommTpAllreduce], 0);
  EXPECT_EQ(s.gpu_records.dropped, 0);
  // The kernel summary covers every record: its totals add up to the records' time.
  int64_t all = 0, summed = 0;
  for (const GpuActivityRecord& g : t.gpu) all += g.end - g.start;
  for (const KernelTotal& k : s.gpu_kernels) summed += k.total_ns;
  EXPECT_EQ(summed, all);
  ASSERT_FALSE(s.gpu_kernels.empty());
  EXPECT_GE(s.gpu_kernels.front().total_ns, s.gpu_kernels.back().total_ns);
  EXPECT_TRUE(std::any_of(s.gpu_kernels.begin(), s.gpu_kernels.end(), [](const KernelTotal& k) {
    return k.name.find("AllReduce") != std::string::npos;
  }));
}

}  // namespace
}  // namespace moescope::storage
