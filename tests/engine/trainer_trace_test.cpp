// What a traced run writes, read back with the storage reader: ranks, tracks, the run row, step metrics,
// and for a pp=2 x tp=2 PPMoE run, every stage's spans per micro-batch in the expected order; plus the
// bubble share of a GPipe run against the schedule's theory, and of every schedule in virtual time.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <tuple>

#include "engine/schedule_timing.h"
#include "engine/thread_communicator.h"
#include "engine/trainer.h"
#include "storage/activity.h"
#include "storage/analysis_bubbles.h"
#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/span_sequence.h"
#include "tracer/tracer.h"

namespace moescope::engine {
namespace {

namespace fs = std::filesystem;
using storage::Category;
using storage::Phase;

storage::Trace tracedRun(const Config& c, const fs::path& path) {
  validate(c);
  const TokenData data = testing::tinyTokens(c);
  auto backend = makeCpuBackend();
  auto tracer = tracer::Tracer::open(path, makeRunInfo(c, *backend, "test"));
  TrainOptions options;
  options.config = c;
  options.data = &data;
  options.tracer = tracer.get();
  train(options);
  tracer->finish(storage::RunStatus::Complete, "");
  tracer.reset();
  return storage::RunReader::open(path)->load();
}

struct Expected {
  std::string name;
  Category category;
  int layer = -1;
  int expert = -1;
  bool operator==(const Expected&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Expected& e) {
  return os << e.name << "/" << storage::categoryName(e.category) << "/L" << e.layer << "/E" << e.expert;
}

// The spans of one micro-batch of one tp rank (waits left out), as the stage pass (stage_pass.cpp) records
// them for a pp x tp=2 PPMoE run of tinyConfig (MoE on odd layers, 4 experts: 2 per tp rank).
std::vector<Expected> expectedMicrobatch(int stage, int stages, int tp_rank, bool forward, int first_layer,
                                         int last_layer) {
  std::vector<Expected> out;
  const int experts[2] = {2 * tp_rank, 2 * tp_rank + 1};
  auto layerForward = [&](int l) {
    const bool moe = l % 2 == 1;
    out.push_back({"attention", Category::ComputeAttention, l});
    out.push_back({"attn_allreduce", Category::CommTpAllreduce, l});
    if (!moe) {
      out.push_back({"ffn", Category::ComputeFfn, l});
      out.push_back({"ffn_allreduce", Category::CommTpAllreduce, l});
      out.push_back({"ffn", Category::ComputeFfn, l});
    } else {
      out.push_back({"router", Category::ComputeRouter, l});
      // A rank's experts compute in one span (one grouped operation); slicing stays per expert.
      for (int e : experts) out.push_back({"gather", Category::MoeSlice, l, e});
      out.push_back({"experts", Category::ComputeExpert, l});
      for (int e : experts) out.push_back({"scatter", Category::MoeSlice, l, e});
      out.push_back({"moe_allreduce", Category::CommTpAllreduce, l});
      out.push_back({"combine", Category::MoeSlice, l});
    }
  };
  auto layerBackward = [&](int l) {
    const bool moe = l % 2 == 1;
    if (!moe) {
      out.push_back({"ffn", Category::ComputeFfn, l});
      out.push_back({"ffn_allreduce", Category::CommTpAllreduce, l});
      out.push_back({"ffn", Category::ComputeFfn, l});
    } else {
      for (int e : experts) out.push_back({"scatter", Category::MoeSlice, l, e});
      out.push_back({"experts", Category::ComputeExpert, l});
      for (int e : experts) out.push_back({"gather", Category::MoeSlice, l, e});
      out.push_back({"moe_allreduce", Category::CommTpAllreduce, l});
      out.push_back({"router", Category::ComputeRouter, l});
    }
    out.push_back({"attention", Category::ComputeAttention, l});
    out.push_back({"attn_allreduce", Category::CommTpAllreduce, l});
    out.push_back({"attention", Category::ComputeAttention, l});
  };
  const bool first = stage == 0, last = stage == stages - 1;
  if (forward) {
    out.push_back(first ? Expected{"embed", Category::ComputeEmbed}
                        : Expected{"recv_activation", Category::CommPpSendrecv});
    for (int l = first_layer; l < last_layer; ++l) layerForward(l);
    out.push_back(last ? Expected{"loss", Category::ComputeLoss}
                       : Expected{"send_activation", Category::CommPpSendrecv});
  } else {
    out.push_back(last ? Expected{"loss", Category::ComputeLoss}
                       : Expected{"recv_grad", Category::CommPpSendrecv});
    for (int l = last_layer; l-- > first_layer;) layerBackward(l);
    out.push_back(first ? Expected{"embed", Category::ComputeEmbed}
                        : Expected{"send_grad", Category::CommPpSendrecv});
  }
  return out;
}

TEST(TrainerTrace, Pp2Tp2PpmoeRunHoldsEveryStagesSpansInOrder) {
  Config c = testing::tinyConfig();
  c.parallel.pp = 2;
  c.parallel.tp = 2;
  c.parallel.microbatches = 2;
  c.parallel.schedule = storage::Schedule::OneFOneB;
  c.trace.enabled = true;
  const moescope::testing::TempRunFile path_file("pp2tp2.moescope");
  const fs::path path = path_file.path();
  const storage::Trace trace = tracedRun(c, path);

  EXPECT_EQ(trace.run.status, storage::RunStatus::Complete);
  EXPECT_EQ(trace.run.layout, "ppmoe");
  EXPECT_EQ(trace.run.backend, "cpu");
  EXPECT_EQ(trace.run.pp, 2);
  EXPECT_EQ(trace.run.tp, 2);
  EXPECT_EQ(trace.run.dp, 1);
  EXPECT_EQ(trace.run.microbatches, 2);
  EXPECT_EQ(trace.run.schedule, storage::Schedule::OneFOneB);
  EXPECT_EQ(trace.run.tokens_per_step, 8 * 8);
  EXPECT_NE(trace.run.config.find("[parallel]"), std::string::npos);
  ASSERT_EQ(trace.ranks.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(trace.ranks[static_cast<size_t>(r)].stage, r / 2);
    EXPECT_EQ(trace.ranks[static_cast<size_t>(r)].tp_rank, r % 2);
  }
  ASSERT_EQ(trace.steps.size(), 2u);
  EXPECT_GT(trace.steps[0].loss, 3.0);
  EXPECT_EQ(trace.steps[1].tokens, 64);

  // A host track per rank; a counter track per expert on the ranks that route (tp rank 0 of a stage),
  // one sample per step: every assignment kept (dropless), 1 MoE layer x 2 micro-batches x 32 tokens x
  // top-2 = 128 per step and stage. And a peak activation counter per rank, one sample per step.
  int host_tracks = 0, activation_tracks = 0;
  std::map<std::pair<int, int>, double> routed;  // (rank, step) -> tokens over the experts
  for (const auto& track : trace.tracks) {
    if (track.kind == storage::TrackKind::HostThread) {
      ++host_tracks;
      continue;
    }
    EXPECT_EQ(track.kind, storage::TrackKind::Counter);
    if (track.name == storage::kPeakActivationCounter) {
      ++activation_tracks;
      continue;
    }
    EXPECT_EQ(track.rank % 2, 0) << track.name;
    EXPECT_EQ(track.name.rfind("tokens/expert ", 0), 0u) << track.name;
  }
  EXPECT_EQ(host_tracks, 4);
  EXPECT_EQ(activation_tracks, 4);
  EXPECT_EQ(trace.tracks.size(), 4u + 2u * 4u + 4u);
  std::map<int32_t, int> samples_seen;  // counters are sorted by (track, time): the i-th is step i
  for (const auto& sample : trace.counters) {
    const auto& track = trace.tracks[static_cast<size_t>(sample.track)];
    if (track.name == storage::kPeakActivationCounter) {
      EXPECT_GT(sample.value, 0) << "rank " << track.rank;
      continue;
    }
    routed[{track.rank, samples_seen[sample.track]++}] += sample.value;
  }
  EXPECT_EQ(trace.counters.size(), 2u * 4u * 2u + 4u * 2u);
  for (int rank : {0, 2})
    for (int step : {0, 1}) EXPECT_EQ((routed[{rank, step}]), 128.0) << "rank " << rank << " step " << step;

  for (const auto& track : trace.tracks) {
    if (track.kind != storage::TrackKind::HostThread) continue;
    const int rank = track.rank;
    const int stage = rank / 2, tp_rank = rank % 2;
    const auto& cols = trace.spans[static_cast<size_t>(track.id)];
    // (step, micro-batch, phase) -> spans in start order, waits left out.
    std::map<std::tuple<int, int, Phase>, std::vector<Expected>> got;
    int waits = 0;
    for (size_t i = 0; i < cols.size(); ++i) {
      const auto s = cols.at(i, track.id);
      ASSERT_GE(s.end, s.start);
      ASSERT_NE(s.step, storage::kNone);
      if (s.category == Category::Wait) {
        ++waits;
        continue;
      }
      if (storage::isCommunication(s.category)) {
        EXPECT_GT(s.bytes, 0) << trace.name(s.name);
      }
      got[{s.step, s.microbatch, s.phase}].push_back(
          {std::string(trace.name(s.name)), s.category, s.layer, s.expert});
    }
    (void)waits;
    for (int step = 0; step < 2; ++step) {
      for (int mb = 0; mb < 2; ++mb) {
        EXPECT_EQ((got[{step, mb, Phase::Forward}]),
                  expectedMicrobatch(stage, 2, tp_rank, true, 2 * stage, 2 * stage + 2))
            << "rank " << rank << " step " << step << " mb " << mb << " forward";
        EXPECT_EQ((got[{step, mb, Phase::Backward}]),
                  expectedMicrobatch(stage, 2, tp_rank, false, 2 * stage, 2 * stage + 2))
            << "rank " << rank << " step " << step << " mb " << mb << " backward";
      }
      const std::vector<Expected> optimizer = {{"grad_norm", Category::Optimizer},
                                               {"loss_norm_allreduce", Category::CommDpAllreduce},
                                               {"adamw", Category::Optimizer}};
      EXPECT_EQ((got[{step, -1, Phase::Optimizer}]), optimizer) << "rank " << rank;
    }
    EXPECT_EQ(got.size(), 2u * (2 * 2 + 1)) << "rank " << rank;
  }
}

// Which communication each layout uses: PPMoE never all-to-alls, DPMoE never all-reduces over tp and
// never slices; DPMoE's dispatch shows as moe.permute and comm.ep_alltoall with bytes.
std::map<Category, int> categoryCounts(const storage::Trace& trace) {
  std::map<Category, int> counts;
  for (const auto& track : trace.tracks) {
    const auto& cols = trace.spans[static_cast<size_t>(track.id)];
    for (size_t i = 0; i < cols.size(); ++i) ++counts[cols.at(i, track.id).category];
  }
  return counts;
}

TEST(TrainerTrace, PpmoeSlicesWithoutAllToAllAndDpmoeDispatchesWithIt) {
  Config c = testing::tinyConfig();
  c.parallel.tp = 2;
  c.trace.enabled = true;
  const moescope::testing::TempRunFile pp_path_file("ppmoe_cats.moescope");
  const fs::path pp_path = pp_path_file.path();
  auto pp = categoryCounts(tracedRun(c, pp_path));
  EXPECT_GT(pp[Category::MoeSlice], 0);
  EXPECT_GT(pp[Category::CommTpAllreduce], 0);
  EXPECT_EQ(pp[Category::CommEpAlltoall], 0);
  EXPECT_EQ(pp[Category::MoePermute], 0);

  c.parallel.tp = 1;
  c.parallel.dp = 2;
  c.parallel.layout = MoeLayout::DPMoE;
  const moescope::testing::TempRunFile dp_path_file("dpmoe_cats.moescope");
  const fs::path dp_path = dp_path_file.path();
  const storage::Trace trace = tracedRun(c, dp_path);
  auto dp = categoryCounts(trace);
  EXPECT_GT(dp[Category::MoePermute], 0);
  EXPECT_GT(dp[Category::CommEpAlltoall], 0);
  EXPECT_GT(dp[Category::CommDpAllreduce], 0);
  EXPECT_EQ(dp[Category::CommTpAllreduce], 0);
  EXPECT_EQ(dp[Category::MoeSlice], 0);
  // Per MoE layer and micro-batch, forward: counts, dispatch, return; backward: dispatch_grad, return_grad.
  std::map<std::string, int> alltoalls;
  for (const auto& track : trace.tracks) {
    const auto& cols = trace.spans[static_cast<size_t>(track.id)];
    for (size_t i = 0; i < cols.size(); ++i) {
      const auto sp = cols.at(i, track.id);
      if (sp.category != Category::CommEpAlltoall) continue;
      ++alltoalls[std::string(trace.name(sp.name))];
      EXPECT_GE(sp.bytes, 0);
      EXPECT_NE(sp.layer, -1);
    }
  }
  // 2 ranks x 2 steps x 1 micro-batch x 2 MoE layers.
  for (const char* name : {"dispatch_counts", "dispatch", "return", "dispatch_grad", "return_grad"}) {
    EXPECT_EQ(alltoalls[name], 8) << name;
  }
}

TEST(TrainerTrace, TracingOffWritesRunRowRanksAndMetricsButNoSpans) {
  Config c = testing::tinyConfig();
  c.parallel.pp = 2;
  c.trace.enabled = false;
  const moescope::testing::TempRunFile path_file("off.moescope");
  const fs::path path = path_file.path();
  const storage::Trace trace = tracedRun(c, path);
  EXPECT_EQ(trace.spanCount(), 0u);
  EXPECT_EQ(trace.ranks.size(), 2u);
  EXPECT_EQ(trace.steps.size(), 2u);
}

// GPipe with p = 4 stages and m = 8 micro-batches: the bubble share is (p - 1) / (m + p - 1) = 3/11 in
// theory. Layers dominate the work so the stages are balanced. With 4 rank threads on 2 cores the
// steady state runs each stage at half speed while the fill and drain do not, so the measured share sits
// somewhat below the theory (about 0.2 on a loaded 2-core machine); step 0 is left out as warm-up.
TEST(TrainerTrace, GpipeBubbleShareIsNearTheory) {
  Config c = testing::tinyConfig();
  c.model.n_experts = 0;
  c.model.vocab_size = 32;
  c.model.seq_len = 32;
  c.model.d_model = 128;
  c.model.d_ff = 512;
  c.model.n_layers = 8;
  c.parallel.pp = 4;
  c.parallel.microbatches = 8;
  c.parallel.schedule = storage::Schedule::GPipe;
  c.train.global_batch = 32;
  c.train.steps = 4;
  c.trace.enabled = true;
  const moescope::testing::TempRunFile path_file("gpipe.moescope");
  const fs::path path = path_file.path();
  const storage::Trace trace = tracedRun(c, path);
  const auto perStep = storage::bubbles(storage::hostActivity(trace), trace.run);
  double share = 0;
  int n = 0;
  for (const auto& b : perStep) {
    if (b.step == 0) continue;  // warm-up
    share += b.share;
    ++n;
  }
  ASSERT_GT(n, 0);
  share /= n;
  EXPECT_NEAR(share, 3.0 / 11.0, 0.1);
  RecordProperty("bubble_share", std::to_string(share));
  std::printf("measured bubble share %.3f, theory %.3f\n", share, 3.0 / 11.0);
}

// Every schedule's measured bubble against its theory, with time that 4 rank threads on 2 cores cannot
// disturb: a backend whose passes take fixed virtual durations. Each rank keeps a virtual clock; a pass
// records its span from the clock and advances it by its duration (schedule_timing.h's PassCosts: a
// forward 1 ms, a backward 2 ms, ZB-H1's B and W 1 ms each, a chunk's pass 1/v of them). What a pass
// needs from another stage comes as that stage's clock through the real pipeline communicator: the
// receiver's clock moves to the sender's (a wait span covers the gap). The trainer walks the real
// schedule, the real tracer writes the run file, and the real analysis measures the bubbles.
class VirtualTimeBackend final : public Backend {
 public:
  static constexpr int64_t kMs = 1'000'000;
  std::string name() const override { return "virtual"; }
  std::string devices(const Config&) const override { return "virtual clock"; }
  std::unique_ptr<CommWorld> makeWorld(int size) override { return std::make_unique<QuietWorld>(size); }
  std::unique_ptr<StageExecutor> makeExecutor(const RankSetup& setup) override {
    return std::make_unique<Executor>(setup);
  }

 private:
  // The thread communicators, recording nothing: their spans would be in real time.
  class Quiet final : public Communicator {
   public:
    explicit Quiet(std::unique_ptr<Communicator> inner) : inner_(std::move(inner)) {}
    int rank() const override { return inner_->rank(); }
    int size() const override { return inner_->size(); }
    void setRecorder(tracer::TrackRecorder*) override {}
    void allReduceSum(std::span<const CommBuffer> parts, const CommSpan& span) override {
      inner_->allReduceSum(parts, span);
    }
    void allToAll(const void* send, const size_t* sendCounts, void* recv, const size_t* recvCounts,
                  DType type, const CommSpan& span) override {
      inner_->allToAll(send, sendCounts, recv, recvCounts, type, span);
    }
    void send(const void* buf, size_t count, DType type, int peer, const CommSpan& span) override {
      inner_->send(buf, count, type, peer, span);
    }
    void recv(void* buf, size_t count, DType type, int peer, const CommSpan& span) override {
      inner_->recv(buf, count, type, peer, span);
    }
    void barrier(const CommSpan& span) override { inner_->barrier(span); }

   private:
    std::unique_ptr<Communicator> inner_;
  };
  class QuietWorld final : public CommWorld {
   public:
    explicit QuietWorld(int size) : world_(size) {}
    std::unique_ptr<Communicator> communicator(int rank, const std::vector<int>& group) override {
      return std::make_unique<Quiet>(world_.communicator(rank, group));
    }
    void abort(const std::string& reason) override { world_.abort(reason); }

   private:
    ThreadWorld world_;
  };
  class Executor final : public StageExecutor {
   public:
    explicit Executor(const RankSetup& s) : s_(s), shape_(pipelineShape(*s.config)), recorder_(s.recorder) {}
    void initialize(uint64_t) override {}
    void loadWeights(const ModelWeights&) override {}
    void storeWeights(ModelWeights&) const override {}
    void setRecorder(tracer::TrackRecorder* r) override { recorder_ = r; }
    void beginStep(int step) override { step_ = step; }
    void run(const PipelineOp& op) override {
      using Kind = PipelineOp::Kind;
      const int stage = s_.coord.stage, g = globalChunk(shape_, stage, op.chunk);
      const int last = shape_.stages * shape_.virtual_stages - 1;
      const bool forward = op.kind == Kind::Forward, weight = op.kind == Kind::BackwardWeight;
      tracer::SpanAttrs a;
      a.step = step_;
      a.microbatch = op.microbatch;
      a.chunk = shape_.virtual_stages > 1 ? op.chunk : -1;
      a.phase = forward ? Phase::Forward : weight ? Phase::BackwardWeight : Phase::Backward;
      if (forward && g > 0) arrive((g - 1) % shape_.stages, a);
      if (!forward && !weight && g < last) arrive((g + 1) % shape_.stages, a);
      const auto d = static_cast<int64_t>(PassCosts{}.of(shape_, op) * kMs);
      a.category = Category::ComputeAttention;
      record("pass", a, clock_, clock_ + d);
      clock_ += d;
      const double now = static_cast<double>(clock_);  // exact: virtual times stay far below 2^53 ns
      if (forward && g < last) s_.pp->send(&now, 1, (g + 1) % shape_.stages, {});
      if (!forward && !weight && g > 0) s_.pp->send(&now, 1, (g - 1) % shape_.stages, {});
    }
    // Every rank waits for the slowest (a world all-reduce of the clocks), then steps its optimizer.
    StepLosses endStep() override {
      std::vector<double> clocks(static_cast<size_t>(s_.world->size()), 0.0);
      clocks[static_cast<size_t>(s_.world->rank())] = static_cast<double>(clock_);
      s_.world->allReduceSum(clocks.data(), clocks.size(), {});
      tracer::SpanAttrs a;
      a.step = step_;
      a.phase = Phase::Optimizer;
      wait(static_cast<int64_t>(*std::max_element(clocks.begin(), clocks.end())), a);
      a.category = Category::Optimizer;
      record("adamw", a, clock_, clock_ + kOptimizer);
      clock_ += kOptimizer;
      return {};
    }

   private:
    static constexpr int64_t kOptimizer = kMs / 5;  // beside steps of about 20 ms
    void arrive(int from, tracer::SpanAttrs a) {
      double sent = 0;
      s_.pp->recv(&sent, 1, from, {});
      wait(static_cast<int64_t>(sent), a);
    }
    void wait(int64_t until, tracer::SpanAttrs a) {
      if (until <= clock_) return;
      a.category = Category::Wait;
      record("wait", a, clock_, until);
      clock_ = until;
    }
    void record(std::string_view name, const tracer::SpanAttrs& a, int64_t start, int64_t end) {
      if (recorder_) recorder_->record(name, a, start, end);
    }
    RankSetup s_;
    PipelineShape shape_;
    tracer::TrackRecorder* recorder_;
    int step_ = 0;
    int64_t clock_ = 1'000 * kMs;  // virtual time starts at 1 s on the run's clock
  };
};

// The sample shape of docs/SCHEDULES.md: pp 4, 8 micro-batches, 8 layers (2 chunks per stage for
// interleaved). Measured (averaged over 3 steps, each stage) within 5 points of the theory, and ordered
// zb-h1 < interleaved < 1f1b = gpipe.
TEST(TrainerTrace, EverySchedulesBubbleInVirtualTimeMatchesItsTheory) {
  std::map<std::string, double> measured;
  for (const char* schedule : {"gpipe", "1f1b", "interleaved", "zb-h1"}) {
    SCOPED_TRACE(schedule);
    Config c = testing::tinyConfig();
    c.model.n_layers = 8;
    c.parallel.pp = 4;
    c.parallel.microbatches = 8;
    applyOverride(c, std::string("parallel.schedule=") + schedule);
    c.parallel.virtual_stages = c.parallel.schedule == Schedule::Interleaved ? 2 : 1;
    c.train.steps = 3;
    VirtualTimeBackend backend;
    const storage::Trace trace = testing::tracedRun(c, testing::tinyTokens(c), backend);
    const double theory = storage::theoreticalBubbleShare(trace.run);
    const auto stages = storage::bubblesPerStage(storage::bubbles(storage::hostActivity(trace), trace.run));
    ASSERT_EQ(stages.size(), 4u);
    double mean = 0;
    for (const storage::StageStepBubble& b : stages) {
      EXPECT_NEAR(b.share, theory, 0.05) << "stage " << b.stage;
      EXPECT_GT(b.bubble_ns, 0) << "stage " << b.stage;
      mean += b.share / static_cast<double>(stages.size());
    }
    measured[schedule] = mean;
    std::printf("%-12s measured bubble share %.4f, theory %.4f\n", schedule, mean, theory);
  }
  EXPECT_LT(measured["zb-h1"], measured["interleaved"]);
  EXPECT_LT(measured["interleaved"], measured["1f1b"]);
  EXPECT_NEAR(measured["1f1b"], measured["gpipe"], 1e-9);
}

}  // namespace
}  // namespace moescope::engine
