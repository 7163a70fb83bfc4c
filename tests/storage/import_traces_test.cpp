// Importing Kineto traces: a hand-written two-stage Megatron-style pipeline (tests/storage/kineto/
// pp2-rank*.json, 1F1B with two micro-batches, the second file's events out of order) checked event by
// event against its JSON and for the meaning the rules, the nesting and the schedule give; the edge
// cases (no distributedInfo, unknown categories, zero and negative durations, old category names and
// epoch timestamps); and bad input, after which nothing is left behind.
#include "storage/import_traces.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>

#include "storage/import_error.h"
#include "storage/rules.h"
#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"
#include "tests/storage/kineto_checks.h"

namespace moescope::storage {
namespace {

const std::filesystem::path kData = std::filesystem::path(MOESCOPE_SOURCE_DIR) / "tests/storage/kineto";
constexpr int64_t kBase0 = 1700000000000000000;  // pp2-rank0.json's baseTimeNanoseconds
constexpr int64_t kBase1 = 1700000000000500000;  // pp2-rank1.json's
constexpr int64_t kUs = 1000;

Trace load(const std::filesystem::path& path) {
  return RunReader::open(path)->load();
}

// The host spans of a rank named `name`, by start.
std::vector<SpanView> spansNamed(const Trace& t, int32_t rank, std::string_view name) {
  std::vector<SpanView> out;
  for (size_t k = 0; k < t.tracks.size(); ++k) {
    if (t.tracks[k].rank != rank || t.tracks[k].kind != TrackKind::HostThread) continue;
    const SpanColumns& c = t.spans[k];
    for (size_t i = 0; i < c.size(); ++i) {
      if (t.name(c.name[i]) == name) out.push_back(c.at(i, static_cast<int32_t>(k)));
    }
  }
  std::sort(out.begin(), out.end(), [](const SpanView& a, const SpanView& b) { return a.start < b.start; });
  return out;
}

SpanView spanAt(const Trace& t, int32_t rank, std::string_view name, int64_t start) {
  for (const SpanView& s : spansNamed(t, rank, name)) {
    if (s.start == start) return s;
  }
  ADD_FAILURE() << "no span " << name << " at " << start << " on rank " << rank;
  return {};
}

const GpuActivityRecord& recordAt(const Trace& t, int64_t start) {
  for (const GpuActivityRecord& g : t.gpu) {
    if (g.start == start) return g;
  }
  ADD_FAILURE() << "no GPU record at " << start;
  static const GpuActivityRecord none;
  return none;
}

class ImportPp2 : public ::testing::Test {
 protected:
  void SetUp() override {
    ImportOptions o;
    o.traces = {kData / "pp2-rank0.json", kData / "pp2-rank1.json"};
    o.output = file_.path();
    o.pp = 2;
    summary_ = importTraces(o);
    trace_ = load(file_.path());
  }
  moescope::testing::TempRunFile file_;
  ImportSummary summary_;
  Trace trace_;
};

TEST_F(ImportPp2, EveryKernelCopyAndAnnotationIsInTheRunAndEveryFlowIsKept) {
  moescope::testing::JsonTraceCounts c0, c1;
  moescope::testing::checkRankAgainstJson(trace_, kData / "pp2-rank0.json", 0, c0);
  moescope::testing::checkRankAgainstJson(trace_, kData / "pp2-rank1.json", 1, c1);
  EXPECT_EQ(c0.byCategory.at("kernel"), 8);
  EXPECT_EQ(c0.byCategory.at("gpu_memcpy"), 1);
  EXPECT_EQ(c0.byCategory.at("gpu_memset"), 1);
  EXPECT_EQ(c0.flows, 10);
  EXPECT_EQ(c0.ncclKernels, 2);
  EXPECT_EQ(c1.byCategory.at("kernel"), 11);
  EXPECT_EQ(c1.ncclKernels, 5);
  EXPECT_EQ(trace_.gpu.size(), 21u);
  // Every complete event but the profiler's own span is a span or a GPU record.
  int64_t json = 0;
  for (const auto* c : {&c0, &c1}) {
    for (const auto& [cat, n] : c->byCategory) json += n;
  }
  EXPECT_EQ(static_cast<int64_t>(trace_.spanCount() + trace_.gpu.size()) + 1 /* gpu_user_annotation */, json);
  // One kernel of rank 0 has no correlation id: its flow ties it.
  const auto meta = std::map<std::string, std::string>(trace_.meta.begin(), trace_.meta.end());
  EXPECT_EQ(meta.at("import.linked_by_flow"), "1");
  EXPECT_EQ(meta.at("import.linked_by_correlation"), "20");
  EXPECT_EQ(meta.at("import.unlinked_gpu_records"), "0");
  EXPECT_EQ(meta.at("import.kernels"), "19");
  EXPECT_EQ(meta.at("import.flows_ac2g"), "10");
}

TEST_F(ImportPp2, RanksLayoutClockAndSteps) {
  ASSERT_EQ(trace_.ranks.size(), 2u);
  EXPECT_EQ(trace_.ranks[0], (RankInfo{0, 0, 0, 0, 0, ""}));
  EXPECT_EQ(trace_.ranks[1], (RankInfo{1, 1, 0, 0, 1, ""}));
  EXPECT_EQ(trace_.run.pp, 2);
  EXPECT_EQ(trace_.run.microbatches, 2);
  EXPECT_EQ(trace_.run.status, RunStatus::Complete);
  EXPECT_EQ(trace_.run.devices, "2 x NVIDIA H200");
  EXPECT_NE(trace_.run.clock.find("hosts' clocks"), std::string::npos) << trace_.run.clock;
  EXPECT_EQ(trace_.run.start_ns, kBase0);
  EXPECT_EQ(trace_.run.end_ns, kBase1 + 1000 * kUs);
  // ProfilerStep#3 on both ranks: one step, from rank 0's start to rank 1's end.
  ASSERT_EQ(trace_.steps.size(), 1u);
  EXPECT_EQ(trace_.steps[0].step, 3);
  EXPECT_EQ(trace_.steps[0].start_ns, kBase0);
  EXPECT_EQ(trace_.steps[0].end_ns, kBase1 + 1000 * kUs);
  // Tracks: each rank's main thread first, then its other threads, then its GPU streams.
  std::vector<std::string> names;
  for (const TrackInfo& t : trace_.tracks) names.push_back(std::to_string(t.rank) + " " + t.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"0 thread 100 (python3)", "0 thread 101 (pt_autograd_0)",
                                      "0 GPU 0 stream 7", "0 GPU 0 stream 20", "1 thread 200 (python3)",
                                      "1 thread 201", "1 GPU 1 stream 7", "1 GPU 1 stream 24"}));
  EXPECT_EQ(summary_.steps, 1);
  EXPECT_EQ(summary_.microbatches, 2);
  EXPECT_TRUE(summary_.notes.empty()) << summary_.notes.front();
}

// Stage 0 of 2 under 1F1B with 2 micro-batches runs F0 F1 B0 B1; stage 1 runs F0 B0 F1 B1 (written
// there in reverse order). Megatron's forward_step and backward_step carry no micro-batch.
TEST_F(ImportPp2, MicrobatchesFromTheSchedule) {
  auto passes = [&](int32_t rank) {
    std::vector<std::pair<int64_t, std::string>> order;
    for (const char* name : {"megatron/core/pipeline_parallel/schedules.py(403): forward_step",
                             "megatron/core/pipeline_parallel/schedules.py(539): backward_step"}) {
      for (const SpanView& s : spansNamed(trace_, rank, name)) {
        EXPECT_EQ(s.step, 3);
        order.emplace_back(s.start, std::string(phaseName(s.phase)) + " " + std::to_string(s.microbatch));
      }
    }
    std::sort(order.begin(), order.end());
    std::vector<std::string> out;
    for (const auto& [start, text] : order) out.push_back(text);
    return out;
  };
  EXPECT_EQ(passes(0), (std::vector<std::string>{"forward 0", "forward 1", "backward 0", "backward 1"}));
  EXPECT_EQ(passes(1), (std::vector<std::string>{"forward 0", "backward 0", "forward 1", "backward 1"}));
  // What runs inside a pass takes its phase and micro-batch: on the pass's thread by nesting, on the
  // autograd thread by time.
  const SpanView mm = spanAt(trace_, 0, "aten::mm", kBase0 + 150 * kUs);
  EXPECT_EQ(std::tuple(mm.phase, mm.microbatch, mm.step), std::tuple(Phase::Forward, 1, 3));
  const SpanView grad =
      spanAt(trace_, 0, "autograd::engine::evaluate_function: MmBackward0", kBase0 + 310 * kUs);
  EXPECT_EQ(std::tuple(grad.phase, grad.microbatch, grad.step), std::tuple(Phase::Backward, 0, 3));
  // A kernel is drawn with its launch's fields: the backward gemm of micro-batch 1 on rank 1.
  const GpuActivityRecord& g = recordAt(trace_, kBase1 + 505 * kUs);
  const LinkedSpan* launch = trace_.linkedSpan(g.span);
  ASSERT_NE(launch, nullptr);
  EXPECT_EQ(std::tuple(launch->span.phase, launch->span.microbatch, launch->span.step),
            std::tuple(Phase::Backward, 1, 3));
  // The layer a module range gives passes down to the ops inside it.
  EXPECT_EQ(spanAt(trace_, 0, "aten::mm", kBase0 + 20 * kUs).layer, 0);
  EXPECT_EQ(spanAt(trace_, 0, "aten::mm", kBase0 + 150 * kUs).layer, kNone);
}

TEST_F(ImportPp2, CategoriesAndBytes) {
  // NCCL send/recv: the group [0, 1] is the pipeline; 1024 bf16 elements are 2048 bytes, on the kernel,
  // its launch and the record_param_comms op around it.
  const GpuActivityRecord& send = recordAt(trace_, kBase0 + 140 * kUs);
  EXPECT_EQ(send.bytes, 2048);
  EXPECT_EQ(trace_.linkedSpan(send.span)->span.category, Category::CommPpSendrecv);
  EXPECT_EQ(trace_.linkedSpan(send.span)->span.bytes, 2048);
  const SpanView comms = spanAt(trace_, 0, "record_param_comms", kBase0 + 117 * kUs);
  EXPECT_EQ(comms.category, Category::CommPpSendrecv);
  EXPECT_EQ(comms.bytes, 2048);
  EXPECT_EQ(comms.phase, Phase::Forward);  // from Megatron's send_forward around it
  // An all-reduce over [0, 1], two stages: not tensor-parallel, so data-parallel; one float.
  const GpuActivityRecord& reduce = recordAt(trace_, kBase1 + 835 * kUs);
  EXPECT_EQ(reduce.bytes, 4);
  EXPECT_EQ(trace_.linkedSpan(reduce.span)->span.category, Category::CommDpAllreduce);
  // A flash-attention kernel names its launch's category; the optimizer's kernel takes its range's.
  EXPECT_EQ(trace_.linkedSpan(recordAt(trace_, kBase0 + 95 * kUs).span)->span.category,
            Category::ComputeAttention);
  const LinkedSpan* adam = trace_.linkedSpan(recordAt(trace_, kBase0 + 800 * kUs).span);
  EXPECT_EQ(std::tuple(adam->span.category, adam->span.phase),
            std::tuple(Category::Optimizer, Phase::Optimizer));
  EXPECT_EQ(spanAt(trace_, 1, "aten::cross_entropy_loss", kBase1 + 100 * kUs).category,
            Category::ComputeLoss);
  // Copies keep their bytes; nothing names a gemm launched from a plain op: user.
  EXPECT_EQ(recordAt(trace_, kBase0 + 880 * kUs).bytes, 4096);
  EXPECT_EQ(recordAt(trace_, kBase0 + 895 * kUs).bytes, 512);
  EXPECT_EQ(trace_.linkedSpan(recordAt(trace_, kBase0 + 40 * kUs).span)->span.category, Category::User);
  // A zero-length op is kept.
  const SpanView zeros = spanAt(trace_, 0, "aten::zeros", kBase0 + 950 * kUs);
  EXPECT_EQ(zeros.duration(), 0);
  EXPECT_EQ(zeros.step, 3);
  // The GPU-side step marker sits on its stream with its step.
  bool found = false;
  for (size_t k = 0; k < trace_.tracks.size(); ++k) {
    if (trace_.tracks[k].name != "GPU 0 stream 7") continue;
    const SpanColumns& c = trace_.spans[k];
    for (size_t i = 0; i < c.size(); ++i) {
      if (trace_.name(c.name[i]) == "ProfilerStep#3") {
        found = true;
        EXPECT_EQ(c.stepAt(i), 3);
        EXPECT_EQ(c.start[i], kBase0 + 39999);
      }
    }
  }
  EXPECT_TRUE(found);
}

TEST(Import, MissingDistributedInfoTakesTheRankFromTheFileNameOrRank) {
  moescope::testing::TempRunFile file;
  ImportOptions o;
  o.traces = {kData / "rank3-no-distributed-info.json"};
  o.output = file.path();
  const ImportSummary s = importTraces(o);
  ASSERT_EQ(s.ranks.size(), 1u);
  EXPECT_EQ(s.ranks[0].rank, 3);
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_NE(s.notes[0].find("rank 3 from the file name"), std::string::npos) << s.notes[0];
  // Without a world size the world is the ranks seen: dp 4, rank 3 is dp rank 3.
  EXPECT_EQ(s.layout, (ParallelLayout{1, 1, 4}));
  Trace t = load(file.path());
  ASSERT_EQ(t.ranks.size(), 1u);
  EXPECT_EQ(t.ranks[0], (RankInfo{3, 0, 0, 3, 2, ""}));
  // Older Kineto: epoch microseconds without baseTimeNanoseconds, "Kernel"/"Runtime"/"Operator".
  moescope::testing::JsonTraceCounts counts;
  moescope::testing::checkRankAgainstJson(t, o.traces[0], 3, counts);
  EXPECT_EQ(counts.byCategory.at("Kernel"), 1);
  ASSERT_EQ(t.gpu.size(), 1u);
  EXPECT_EQ(t.gpu[0].start, 1666149715000060 * kUs);
  ASSERT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.steps[0].step, 7);

  o.rank = 1;
  EXPECT_EQ(importTraces(o).ranks[0].rank, 1);
  EXPECT_EQ(load(file.path()).ranks[0].rank, 1);
}

TEST(Import, UnknownCategoriesAreKeptAsUserAndOddDurationsAreCounted) {
  moescope::testing::TempRunFile file;
  ImportOptions o;
  o.traces = {kData / "unknown-categories.json"};
  o.output = file.path();
  const ImportSummary s = importTraces(o);
  const Trace t = load(file.path());
  const SpanView tick = spanAt(t, 0, "pipeline.tick", kBase0 + 10 * kUs);
  EXPECT_EQ(std::tuple(tick.category, tick.step), std::tuple(Category::User, 1));
  // A name the rules know gives its category whatever the event's category was.
  EXPECT_EQ(spanAt(t, 0, "attention", kBase0 + 50 * kUs).category, Category::ComputeAttention);
  EXPECT_EQ(spanAt(t, 0, "aten::empty", kBase0 + 12 * kUs).duration(), 0);
  EXPECT_EQ(spanAt(t, 0, "aten::copy_", kBase0 + 20 * kUs).duration(), 0);
  EXPECT_TRUE(spansNamed(t, 0, "no time").empty());
  EXPECT_TRUE(spansNamed(t, 0, "begin event").empty());
  EXPECT_EQ(t.spanCount(), 6u);
  const auto meta = std::map<std::string, std::string>(t.meta.begin(), t.meta.end());
  EXPECT_EQ(meta.at("import.unknown_categories"), "2");
  EXPECT_EQ(meta.at("import.negative_durations"), "1");
  EXPECT_EQ(meta.at("import.zero_durations"), "2");
  EXPECT_EQ(s.notes,
            (std::vector<std::string>{
                o.traces[0].string() +
                    ": 2 events of unknown categories (my_framework_op, another_unknown) kept as user",
                o.traces[0].string() + ": 1 events with a negative duration taken as 0",
                o.traces[0].string() + ": 1 complete events without a time left out",
                o.traces[0].string() + ": 1 events of phases other than X, s, f, M, i, C left out"}));
}

// Bad input: one line naming the file and the problem, and nothing left in the output's folder.
std::string importError(const std::vector<std::filesystem::path>& traces, ImportOptions o = {}) {
  moescope::testing::TempRunFile file;
  o.traces = traces;
  o.output = file.path();
  std::string message = "(no error)";
  try {
    importTraces(o);
  } catch (const ImportError& e) {
    message = e.what();
  }
  const auto folder = file.path().parent_path();
  EXPECT_TRUE(std::filesystem::is_empty(folder))
      << "left behind: " << std::filesystem::directory_iterator(folder)->path();
  EXPECT_EQ(message.find('\n'), std::string::npos);
  return message;
}

TEST(Import, BadInputIsOneLineAndLeavesNothing) {
  const std::string d = kData.string() + "/";
  EXPECT_EQ(importError({kData / "not-json.json"}),
            d + "not-json.json: not JSON (byte 0: unexpected character 'T')");
  EXPECT_EQ(
      importError({kData / "not-kineto.json"}),
      d + "not-kineto.json: not a PyTorch profiler (Kineto) trace (no schemaVersion, and none of Kineto's "
          "event categories)");
  EXPECT_EQ(
      importError({kData / "array-form.json"}),
      d + "array-form.json: not a PyTorch profiler (Kineto) trace (a JSON value that is not an object with "
          "traceEvents)");
  EXPECT_EQ(
      importError({kData / "pp2-rank0-truncated.json.gz"}),
      d + "pp2-rank0-truncated.json.gz: truncated gzip data (the file ends inside the compressed stream)");
  EXPECT_EQ(importError({kData / "pp2-rank0.json", kData / "other-run-rank1.json"}),
            d + "pp2-rank0.json and " + d +
                "other-run-rank1.json were recorded 3600.0 s apart (by their hosts' "
                "clocks): traces of different runs");
  EXPECT_EQ(importError({kData / "pp2-rank0.json", kData / "pp2-rank0.json"}),
            d + "pp2-rank0.json and " + d +
                "pp2-rank0.json are both rank 0: traces of one rank twice, or of "
                "different runs");
  EXPECT_EQ(importError({kData / "pp2-rank0.json", kData / "unknown-categories.json"}),
            d + "pp2-rank0.json and " + d +
                "unknown-categories.json are both rank 0: traces of one rank twice, or "
                "of different runs");
  EXPECT_EQ(importError({kData / "missing.json"}),
            d + "missing.json: cannot open: No such file or directory");
  ImportOptions layout;
  layout.pp = 4;
  EXPECT_EQ(importError({kData / "pp2-rank0.json"}, layout),
            "pp 4 x tp 1 does not divide the world size 2 of the traces");
  layout.dp = 1;
  EXPECT_EQ(importError({kData / "pp2-rank0.json"}, layout),
            "the layout pp 4 x tp 1 x dp 1 = 4 ranks, but the traces' world size is 2");
  ImportOptions order;
  order.order = "tp-pp";
  EXPECT_EQ(importError({kData / "pp2-rank0.json"}, order), "the rank order 'tp-pp' must name tp, dp and pp");
  ImportOptions rank;
  rank.rank = 0;
  EXPECT_EQ(importError({kData / "pp2-rank0.json", kData / "pp2-rank1.json"}, rank),
            "--rank names the rank of a single trace; 2 were given");
}

TEST(Import, ABadRulesFileIsReportedBeforeAnythingIsRead) {
  moescope::testing::TempRunFile file;
  const auto rules = file.sibling("rules.toml");
  std::ofstream(rules) << "[[rule]]\nmatch = '('\n";
  ImportOptions o;
  o.traces = {kData / "pp2-rank0.json"};
  o.output = file.path();
  o.rules = {rules};
  EXPECT_THROW(importTraces(o), RulesError);
  EXPECT_FALSE(std::filesystem::exists(file.path()));
}

TEST(Import, UserRulesComeFirst) {
  moescope::testing::TempRunFile file;
  const auto rules = file.sibling("rules.toml");
  std::ofstream(rules) << "[[rule]]\nmatch = '^aten::mm$'\ncategory = \"compute.ffn\"\n";
  ImportOptions o;
  o.traces = {kData / "pp2-rank0.json"};
  o.output = file.path();
  o.rules = {rules};
  importTraces(o);
  const Trace t = load(file.path());
  EXPECT_EQ(spanAt(t, 0, "aten::mm", kBase0 + 20 * kUs).category, Category::ComputeFfn);
  // ... and the gemm it launched with it.
  EXPECT_EQ(t.linkedSpan(recordAt(t, kBase0 + 40 * kUs).span)->span.category, Category::ComputeFfn);
}

TEST(Import, TheOutputIsReplacedOnlyWhenWholeAndNeverByAnInput) {
  moescope::testing::TempRunFile file;
  std::ofstream(file.path()) << "an older run";
  ImportOptions o;
  o.traces = {kData / "pp2-rank0.json", kData / "not-json.json"};
  o.output = file.path();
  EXPECT_THROW(importTraces(o), ImportError);
  std::ifstream in(file.path());
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "an older run");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(file.path().parent_path()), {}), 1);

  const auto copy = file.sibling("trace.json");
  std::filesystem::copy_file(kData / "pp2-rank0.json", copy);
  o.traces = {copy};
  o.output = copy;
  try {
    importTraces(o);
    FAIL() << "an input was taken as the output";
  } catch (const ImportError& e) {
    EXPECT_EQ(std::string(e.what()),
              copy.string() + ": the output is one of the traces; it would be replaced");
  }
  EXPECT_EQ(std::filesystem::file_size(copy), std::filesystem::file_size(kData / "pp2-rank0.json"));
}

TEST(Import, ProgressRisesToTheTotalAndCancelLeavesNothing) {
  moescope::testing::TempRunFile file;
  ImportOptions o;
  o.traces = {kData / "pp2-rank0.json", kData / "pp2-rank1.json"};
  o.output = file.path();
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  o.progress = [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  importTraces(o);
  const uint64_t total = std::filesystem::file_size(o.traces[0]) + std::filesystem::file_size(o.traces[1]);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::pair(total, total));
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_LE(calls[i - 1].first, calls[i].first);

  std::filesystem::remove(file.path());
  std::atomic<bool> cancel{false};
  o.cancel = &cancel;
  o.progress = [&](uint64_t done, uint64_t) {
    if (done > 0) cancel = true;
  };
  EXPECT_THROW(importTraces(o), ImportCancelled);
  EXPECT_TRUE(std::filesystem::is_empty(file.path().parent_path()));
}

TEST(Import, RankFromFileName) {
  EXPECT_EQ(rankFromFileName("rank-3.json.gz"), 3);  // Megatron's torch_profile/rank-N.json.gz
  EXPECT_EQ(rankFromFileName("/x/rank12/trace_rank_5.pt.trace.json"), 5);
  EXPECT_EQ(rankFromFileName("Rank0.json"), 0);
  EXPECT_EQ(rankFromFileName("host_1234.1700000000.pt.trace.json"), std::nullopt);
  EXPECT_EQ(rankFromFileName("ranking.json"), std::nullopt);
}

}  // namespace
}  // namespace moescope::storage
