// A recorded process's stream (storage/record_stream.h) into a shard, fed by hand as the injection
// library would feed it: ranges paired per thread and domain, micro-batches rebuilt from the schedule
// (1F1B and GPipe, Megatron's unnumbered forward_step/backward_step), GPU records tied to the ranges
// around their launch calls, NCCL kernels named by the rules, --steps, the shard's meta; then shards
// merged into one run by the shard merge.
#include "storage/record_shard.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "storage/run_reader.h"
#include "storage/shard_merge.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

constexpr int64_t kThread = 100, kOther = 101;

// Builds a stream: each pass is a pushed range with a nested layer range and, inside it, one kernel
// launch; a pass takes 10 us on the host, its kernel 5 us on the GPU 2 us later.
class StreamBuilder {
 public:
  StreamBuilder() { s_.pid = kThread; }
  int64_t now() const { return t_; }
  void push(const std::string& name, int64_t thread = kThread, uint32_t domain = 0) {
    s_.events.push_back({RecordEventKind::Push, t_++, thread, s_.names.intern(name), domain, 0});
  }
  void pop(int64_t thread = kThread, uint32_t domain = 0) {
    s_.events.push_back({RecordEventKind::Pop, t_++, thread, 0, domain, 0});
  }
  void launch(const std::string& kernel, int64_t stream = 7) {
    const uint32_t c = ++correlation_;
    s_.calls.push_back({t_, t_ + 1, kThread, s_.names.intern("cudaLaunchKernel"), c});
    s_.gpu.push_back(
        {GpuActivityKind::Kernel, t_ + 2000, t_ + 7000, s_.names.intern(kernel), 0, stream, c, 0});
    t_ += 2;
  }
  void pass(const char* phase, const std::string& kernel = "gemm") {
    push(std::string("megatron.core.pipeline_parallel.schedules.") + phase + "_step");
    push("megatron.core.transformer.mlp.forward.linear_fc1");
    launch(kernel);
    t_ += 10'000;
    pop();
    pop();
  }
  void step(int32_t n, const std::vector<char>& passes) {
    push("ProfilerStep#" + std::to_string(n));
    for (char p : passes) pass(p == 'F' ? "forward" : "backward");
    pop();
    t_ += 1000;
  }
  RecordStream take() {
    s_.start_ns = 0;
    s_.end_ns = t_ + 100'000;
    s_.gpu_recorded = true;
    return std::move(s_);
  }
  RecordStream& stream() { return s_; }

 private:
  RecordStream s_;
  int64_t t_ = 1000;
  uint32_t correlation_ = 0;
};

class RecordShard : public ::testing::Test {
 protected:
  ShardSummary write(const RecordStream& s, const std::string& name, int32_t rank, int32_t pp,
                     Schedule schedule = Schedule::OneFOneB) {
    ShardWriteOptions o;
    o.output = temp_.path() / name;
    o.rules = &rules_;
    o.layout.pp = pp;
    o.schedule = schedule;
    o.shard = {rank, pp, "run-1", rank, "python train.py"};
    o.steps = steps_;
    return writeRecordedShard(s, o);
  }
  Trace load(const std::string& name) { return RunReader::open(temp_.path() / name)->load(); }

  // (phase, micro-batch) of every pass span, in time order.
  static std::vector<std::pair<Phase, int32_t>> passes(const Trace& t) {
    std::vector<std::pair<int64_t, std::pair<Phase, int32_t>>> found;
    for (size_t track = 0; track < t.spans.size(); ++track) {
      if (t.tracks[track].kind != TrackKind::HostThread) continue;
      const SpanColumns& c = t.spans[track];
      for (size_t i = 0; i < c.size(); ++i) {
        const std::string_view n = t.name(c.name[i]);
        if (n.ends_with("forward_step") || n.ends_with("backward_step"))
          found.push_back({c.start[i], {c.phase[i], c.microbatch[i]}});
      }
    }
    std::sort(found.begin(), found.end());
    std::vector<std::pair<Phase, int32_t>> out;
    for (auto& f : found) out.push_back(f.second);
    return out;
  }
  static std::string meta(const Trace& t, const std::string& key) {
    for (const auto& [k, v] : t.meta) {
      if (k == key) return v;
    }
    return "<absent>";
  }

  RuleSet rules_ = builtinRules();
  std::optional<std::pair<int32_t, int32_t>> steps_;
  moescope::testing::TempDir temp_{"record-shard"};
};

TEST(RecordRanges, PairedPerThreadAndDomainStartEndAcrossThreads) {
  RecordStream s;
  const uint32_t a = s.names.intern("a"), b = s.names.intern("b"), c = s.names.intern("c");
  s.events = {
      {RecordEventKind::Push, 10, kThread, a, 0, 0},
      {RecordEventKind::Push, 11, kOther, b, 0, 0},
      {RecordEventKind::Push, 12, kThread, c, 1, 0},
      {RecordEventKind::Pop, 13, kThread, 0, 0, 0},  // closes a
      {RecordEventKind::Start, 14, kThread, b, 0, 9},
      {RecordEventKind::End, 15, kOther, 0, 0, 9},
      {RecordEventKind::Pop, 16, kOther, 0, 0, 0},
      {RecordEventKind::Pop, 17, kOther, 0, 0, 0},    // nothing open
      {RecordEventKind::End, 18, kThread, 0, 0, 42},  // never started
      {RecordEventKind::Mark, 19, kThread, a, 0, 0},
  };
  s.end_ns = 50;
  int64_t unclosed = 0, unmatched = 0;
  const std::vector<RecordedRange> r = pairRanges(s, unclosed, unmatched);
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0], (RecordedRange{kThread, 10, 13, a, 0}));
  EXPECT_EQ(r[1], (RecordedRange{kOther, 11, 16, b, 0}));
  EXPECT_EQ(r[2],
            (RecordedRange{kThread, 12, 50, c, 1}));  // domain 1's push: never popped, closed at the end
  EXPECT_EQ(r[3], (RecordedRange{kThread, 14, 15, b, 0}));  // on its starter's thread
  EXPECT_EQ(r[4], (RecordedRange{kThread, 19, 19, a, 0}));
  EXPECT_EQ(unclosed, 1);
  EXPECT_EQ(unmatched, 2);
}

// Stage 0 of 2 under 1F1B with 3 micro-batches: one warm-up forward, then alternation.
//   F0 F1 B0 F2 B1 B2  ->  micro-batches 0 1 0 2 1 2
TEST_F(RecordShard, OneFOneBMicroBatchesFromTheScheduleAndKernelsTiedToTheirRanges) {
  StreamBuilder b;
  b.step(0, {'F', 'F', 'B', 'F', 'B', 'B'});
  b.step(1, {'F', 'F', 'B', 'F', 'B', 'B'});
  const RecordStream s = b.take();
  const ShardSummary summary = write(s, "s0.moescope", 0, 2);
  EXPECT_EQ(summary.kernels, 12);
  EXPECT_EQ(summary.linked, 12);
  EXPECT_EQ(summary.unlinked, 0);
  EXPECT_EQ(summary.steps, 2);
  EXPECT_EQ(summary.microbatches, 3);

  const Trace t = load("s0.moescope");
  constexpr Phase F = Phase::Forward, B = Phase::Backward;
  const std::vector<std::pair<Phase, int32_t>> step = {{F, 0}, {F, 1}, {B, 0}, {F, 2}, {B, 1}, {B, 2}};
  std::vector<std::pair<Phase, int32_t>> both = step;
  both.insert(both.end(), step.begin(), step.end());
  EXPECT_EQ(passes(t), both);
  EXPECT_EQ(t.run.backend, "recorded");
  EXPECT_EQ(t.run.pp, 2);
  EXPECT_EQ(t.run.microbatches, 3);
  EXPECT_EQ(t.run.status, RunStatus::Complete);
  ASSERT_EQ(t.steps.size(), 2u);
  // Every kernel points at its launch call, which the nesting made compute.ffn of its pass.
  ASSERT_EQ(t.gpu.size(), 12u);
  for (const GpuActivityRecord& g : t.gpu) {
    const LinkedSpan* l = t.linkedSpan(g.span);
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(t.name(l->span.name), "cudaLaunchKernel");
    EXPECT_EQ(l->span.category, Category::ComputeFfn);
    EXPECT_NE(l->span.microbatch, kNone);
    EXPECT_NE(l->span.step, kNone);
  }
  EXPECT_EQ(meta(t, "shard.index"), "0");
  EXPECT_EQ(meta(t, "shard.count"), "2");
  EXPECT_EQ(meta(t, "shard.run_id"), "run-1");
  EXPECT_EQ(meta(t, "clock.offset_ns"), "0");
  EXPECT_EQ(meta(t, "clock.source"), "host");
  EXPECT_EQ(meta(t, "record.gpu"), "cupti");
}

// GPipe on the last stage of 2: all forwards, then all backwards.
TEST_F(RecordShard, GPipeMicroBatchesFromTheSchedule) {
  StreamBuilder b;
  b.step(0, {'F', 'F', 'F', 'B', 'B', 'B'});
  write(b.take(), "g.moescope", 1, 2, Schedule::GPipe);
  const Trace t = load("g.moescope");
  constexpr Phase F = Phase::Forward, B = Phase::Backward;
  EXPECT_EQ(passes(t),
            (std::vector<std::pair<Phase, int32_t>>{{F, 0}, {F, 1}, {F, 2}, {B, 0}, {B, 1}, {B, 2}}));
  ASSERT_EQ(t.ranks.size(), 1u);
  EXPECT_EQ(t.ranks[0].stage, 1);
}

TEST_F(RecordShard, NcclKernelsTakeTheirCommunicationCategoryAndUnnamedRangesAreUser) {
  StreamBuilder b;
  b.push("ProfilerStep#0");
  b.push("my own range");
  b.launch("ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)");
  b.launch("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)");
  b.launch("my_kernel");
  b.pop();
  b.pop();
  write(b.take(), "n.moescope", 0, 1);
  const Trace t = load("n.moescope");
  std::map<std::string, Category> byKernel;
  for (const GpuActivityRecord& g : t.gpu) {
    const LinkedSpan* l = t.linkedSpan(g.span);
    ASSERT_NE(l, nullptr);
    // The kernel's kind: its name up to the parameters and the reduction.
    std::string kind(t.name(g.name));
    kind = kind.substr(0, kind.find('('));
    kind = kind.substr(0, kind.find("_Sum"));
    byKernel[kind] = l->span.category;
  }
  ASSERT_EQ(byKernel.size(), 3u);
  EXPECT_EQ(byKernel["ncclDevKernel_SendRecv"], Category::CommPpSendrecv);
  EXPECT_EQ(byKernel["ncclDevKernel_AllReduce"], Category::CommDpAllreduce);
  EXPECT_EQ(byKernel["my_kernel"], Category::User);
  EXPECT_EQ(meta(t, "record.user_spans"), "3");  // the step marker, my own range, my_kernel's launch
}

TEST_F(RecordShard, StepsKeepsOnlyThoseStepsAndTheirKernels) {
  StreamBuilder b;
  for (int32_t s = 0; s < 4; ++s) b.step(s, {'F', 'B'});
  steps_ = std::pair{1, 2};
  const ShardSummary summary = write(b.take(), "st.moescope", 0, 1);
  const Trace t = load("st.moescope");
  EXPECT_EQ(summary.kernels, 4);
  EXPECT_GT(summary.left_out, 0);
  EXPECT_EQ(t.gpu.size(), 4u);
  ASSERT_EQ(t.steps.size(), 2u);
  EXPECT_EQ(t.steps[0].step, 1);
  EXPECT_EQ(t.steps[1].step, 2);
  for (size_t track = 0; track < t.spans.size(); ++track) {
    if (t.tracks[track].kind != TrackKind::HostThread) continue;
    const SpanColumns& c = t.spans[track];
    for (size_t i = 0; i < c.size(); ++i) EXPECT_TRUE(c.stepAt(i) == 1 || c.stepAt(i) == 2) << c.stepAt(i);
  }
  EXPECT_EQ(meta(t, "record.steps"), "1:2");
}

TEST(RecordSteps, ParseStepRange) {
  std::string error;
  EXPECT_EQ(parseStepRange("3:7", error), (std::pair{3, 7}));
  EXPECT_EQ(parseStepRange("0:0", error), (std::pair{0, 0}));
  for (const char* bad : {"", "3", "3:", ":7", "a:b", "7:3", "-1:2", "1:2:3"}) {
    error.clear();
    EXPECT_FALSE(parseStepRange(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

// Two ranks of a 2-stage run through the shard merge (storage/shard_merge.h): ids moved past the first
// shard's, GPU records still on their launch calls, the run named after its shards' folder; a command
// that failed marks the merged run failed after what the merge said.
TEST_F(RecordShard, ShardsMergeIntoOneRun) {
  StreamBuilder r0, r1;
  r0.step(0, {'F', 'F', 'B', 'B'});
  r1.step(0, {'F', 'B', 'F', 'B'});
  const std::filesystem::path dir = temp_.path() / shardsFolderName("job.moescope");
  std::filesystem::create_directories(dir);
  write(r0.take(), shardsFolderName("job.moescope") + "/" + shardFileName(0), 0, 2);
  write(r1.take(), shardsFolderName("job.moescope") + "/" + shardFileName(1), 1, 2);
  const ShardInfo info = readShardInfo(dir / shardFileName(1));
  EXPECT_EQ(info.index, 1);
  EXPECT_EQ(info.count, 2);
  EXPECT_EQ(info.run_id, "run-1");
  EXPECT_EQ(info.ranks, (std::vector<int32_t>{1}));
  EXPECT_EQ(info.clock, ClockCorrection{});
  EXPECT_EQ(info.clock.source, "host");
  const MergeReport report = mergeShards(listShards(dir), temp_.path() / "run.moescope");
  EXPECT_EQ(report.shards, 2);
  EXPECT_EQ(report.processes, 2);
  EXPECT_EQ(report.gpu_records, 8);
  EXPECT_EQ(report.status, RunStatus::Complete) << report.error;
  const Trace t = load("run.moescope");
  EXPECT_EQ(t.run.name, "job");
  ASSERT_EQ(t.ranks.size(), 2u);
  EXPECT_EQ(t.ranks[1].stage, 1);
  EXPECT_EQ(t.gpu.size(), 8u);
  for (const GpuActivityRecord& g : t.gpu) {
    const LinkedSpan* l = t.linkedSpan(g.span);
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(t.name(l->span.name), "cudaLaunchKernel");
    // The launch is on a host track of the rank that owns the kernel's stream.
    EXPECT_EQ(t.tracks[static_cast<size_t>(l->span.track)].rank, t.tracks[static_cast<size_t>(g.track)].rank);
  }
  EXPECT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.run.status, RunStatus::Complete);

  markRunFailed(temp_.path() / "run.moescope", "the command exited with status 3");
  const Trace failed = load("run.moescope");
  EXPECT_EQ(failed.run.status, RunStatus::Failed);
  EXPECT_EQ(failed.run.error, "the command exited with status 3");
}

// A process terminated while recording writes a failed shard: the merged run is failed and names it,
// and the command's own failure is said after that.
TEST_F(RecordShard, AFailedShardFailsTheMergedRun) {
  StreamBuilder r0, r1;
  r0.step(0, {'F', 'B'});
  r1.step(0, {'F', 'B'});
  write(r0.take(), shardFileName(0), 0, 2);
  ShardWriteOptions o;
  o.output = temp_.path() / shardFileName(1);
  o.rules = &rules_;
  o.layout.pp = 2;
  o.shard = {1, 2, "run-1", 1, "python train.py"};
  o.status = RunStatus::Failed;
  o.error = "the process was terminated (SIGTERM)";
  writeRecordedShard(r1.take(), o);
  const MergeReport report = mergeShards({temp_.path() / shardFileName(0), temp_.path() / shardFileName(1)},
                                         temp_.path() / "run.moescope");
  EXPECT_EQ(report.status, RunStatus::Failed);
  EXPECT_EQ(report.stopped, (std::vector<int32_t>{1}));
  EXPECT_NE(report.error.find("process 1 (ranks 1) failed: the process was terminated (SIGTERM)"),
            std::string::npos)
      << report.error;
  EXPECT_EQ(load("run.moescope").gpu.size(), 4u);  // what the failed process recorded is kept
  markRunFailed(temp_.path() / "run.moescope", "the command exited with status 143");
  EXPECT_EQ(load("run.moescope").run.error, report.error + "; the command exited with status 143");
}

// Processes started without a launcher's rank variables say shard.count 0: the merge counts the shards.
TEST_F(RecordShard, ShardsOfUnknownCountMergeAsTheShardsFound) {
  for (int32_t i = 0; i < 2; ++i) {
    StreamBuilder b;
    b.step(0, {'F', 'B'});
    ShardWriteOptions o;
    o.output = temp_.path() / shardFileName(i);
    o.rules = &rules_;
    o.layout.pp = 2;
    o.shard = {i, 0, "run-1", i, "./probe"};
    writeRecordedShard(b.take(), o);
  }
  const MergeReport report = mergeShards(listShards(temp_.path()), temp_.path() / "run.moescope");
  EXPECT_EQ(report.processes, 2);
  EXPECT_TRUE(report.missing.empty());
  EXPECT_EQ(report.status, RunStatus::Complete) << report.error;
}

TEST_F(RecordShard, MergeRefusesShardsOfTwoRunsOrOneRankTwice) {
  auto shard = [&](const std::string& name, ShardIdentity id) {
    StreamBuilder b;
    b.step(0, {'F', 'B'});
    ShardWriteOptions o;
    o.output = temp_.path() / name;
    o.rules = &rules_;
    o.layout.pp = 2;
    o.shard = std::move(id);
    writeRecordedShard(b.take(), o);
    return temp_.path() / name;
  };
  const auto a = shard("a.moescope", {0, 2, "run-1", 0, "x"});
  const auto sameRank = shard("b.moescope", {1, 2, "run-1", 0, "x"});
  const auto otherRun = shard("c.moescope", {1, 2, "run-2", 1, "x"});
  auto refused = [&](const std::filesystem::path& second, const std::string& needle) {
    try {
      mergeShards({a, second}, temp_.path() / "m.moescope");
      ADD_FAILURE() << "merged: " << needle;
    } catch (const StorageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refused(sameRank, "holds rank 0");
  refused(otherRun, "belongs to another run");
  EXPECT_FALSE(std::filesystem::exists(temp_.path() / "m.moescope"));
}

}  // namespace
}  // namespace moescope::storage
