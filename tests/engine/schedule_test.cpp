#include "engine/schedule.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <tuple>

namespace moescope::engine {
namespace {

using Kind = PipelineOp::Kind;

PipelineShape shape(Schedule schedule, int p, int m, int v = 1, bool split = false) {
  return {schedule, p, m, v, split};
}

std::string text(const PipelineShape& s, int stage) {
  std::string out;
  for (const PipelineOp& op : stageSchedule(s, stage)) {
    if (!out.empty()) out += ' ';
    out += passName(op, s.virtual_stages);
  }
  return out;
}

TEST(Schedule, GpipeRunsEveryForwardThenEveryBackward) {
  EXPECT_EQ(text(shape(Schedule::GPipe, 4, 3), 1), "F0 F1 F2 B0 B1 B2");
}

TEST(Schedule, OneFOneBWarmsUpThenAlternates) {
  EXPECT_EQ(text(shape(Schedule::OneFOneB, 4, 6), 0), "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5");
  EXPECT_EQ(text(shape(Schedule::OneFOneB, 4, 6), 2), "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5");
  EXPECT_EQ(text(shape(Schedule::OneFOneB, 4, 3), 3), "F0 B0 F1 B1 F2 B2");
  // Fewer micro-batches than stages: the warm-up is capped.
  EXPECT_EQ(text(shape(Schedule::OneFOneB, 4, 2), 0), "F0 F1 B0 B1");
}

// Megatron-Core's forward_backward_pipelining_with_interleaving for pp 4, 8 micro-batches, 2 chunks
// per stage (the Megatron-LM paper's Figure 4), worked out by hand from its schedule table: forwards
// walk (mb 0-3, chunk 0), (0-3, 1), (4-7, 0), (4-7, 1); backwards the same with the chunk mirrored;
// stage s warms up with (4 - s - 1) x 2 + (2 - 1) x 4 forwards, then one forward and one backward.
TEST(Schedule, InterleavedIsMegatronCoresOrder) {
  const PipelineShape s = shape(Schedule::Interleaved, 4, 8, 2);
  EXPECT_EQ(text(s, 0),
            "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 F4.0 F5.0 "
            "F6.0 B0.1 F7.0 B1.1 F4.1 B2.1 F5.1 B3.1 F6.1 B0.0 F7.1 B1.0 "
            "B2.0 B3.0 B4.1 B5.1 B6.1 B7.1 B4.0 B5.0 B6.0 B7.0");
  EXPECT_EQ(text(s, 1),
            "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 "
            "F4.0 B0.1 F5.0 B1.1 F6.0 B2.1 F7.0 B3.1 F4.1 B0.0 F5.1 B1.0 F6.1 B2.0 F7.1 B3.0 "
            "B4.1 B5.1 B6.1 B7.1 B4.0 B5.0 B6.0 B7.0");
  EXPECT_EQ(text(s, 2),
            "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 "
            "F2.1 B0.1 F3.1 B1.1 F4.0 B2.1 F5.0 B3.1 F6.0 B0.0 F7.0 B1.0 F4.1 B2.0 F5.1 B3.0 F6.1 B4.1 "
            "F7.1 B5.1 B6.1 B7.1 B4.0 B5.0 B6.0 B7.0");
  EXPECT_EQ(text(s, 3),
            "F0.0 F1.0 F2.0 F3.0 "
            "F0.1 B0.1 F1.1 B1.1 F2.1 B2.1 F3.1 B3.1 F4.0 B0.0 F5.0 B1.0 F6.0 B2.0 F7.0 B3.0 F4.1 B4.1 "
            "F5.1 B5.1 F6.1 B6.1 F7.1 B7.1 B4.0 B5.0 B6.0 B7.0");
}

TEST(Schedule, InterleavedWithAsManyMicrobatchesAsStagesWarmsUpThroughEveryForward) {
  // pp 2, 2 micro-batches, 2 chunks: stage 0's warm-up (2 + 2) is every forward.
  const PipelineShape s = shape(Schedule::Interleaved, 2, 2, 2);
  EXPECT_EQ(text(s, 0), "F0.0 F1.0 F0.1 F1.1 B0.1 B1.1 B0.0 B1.0");
  EXPECT_EQ(text(s, 1), "F0.0 F1.0 F0.1 B0.1 F1.1 B1.1 B0.0 B1.0");
}

// ZB-H1 for pp 4 and 8 micro-batches as the Zero Bubble paper's Figure 3 draws it (and DeepSpeed's
// ZeroBubbleH1Pipeline orders it with exact semantics): 1F1B's warm-up; stage s then runs s
// forward/backward pairs whose weight passes wait, then F B W, then B W, then the waiting W passes.
// The last stage: F0 B0 F1 B1 F2 B2, then F3 B3 W0: every W three micro-batches late.
TEST(Schedule, ZbH1IsTheZeroBubblePapersOrder) {
  const PipelineShape s = shape(Schedule::ZbH1, 4, 8);
  EXPECT_EQ(text(s, 0), "F0 F1 F2 F3 B0 W0 F4 B1 W1 F5 B2 W2 F6 B3 W3 F7 B4 W4 B5 W5 B6 W6 B7 W7");
  EXPECT_EQ(text(s, 1), "F0 F1 F2 B0 F3 B1 W0 F4 B2 W1 F5 B3 W2 F6 B4 W3 F7 B5 W4 B6 W5 B7 W6 W7");
  EXPECT_EQ(text(s, 2), "F0 F1 B0 F2 B1 F3 B2 W0 F4 B3 W1 F5 B4 W2 F6 B5 W3 F7 B6 W4 B7 W5 W6 W7");
  EXPECT_EQ(text(s, 3), "F0 B0 F1 B1 F2 B2 F3 B3 W0 F4 B4 W1 F5 B5 W2 F6 B6 W3 F7 B7 W4 W5 W6 W7");
  for (const PipelineOp& op : stageSchedule(s, 2)) EXPECT_NE(op.kind, Kind::Backward);
}

// split_backward: each backward becomes its B immediately followed by its W, nothing else moves (so a
// 1F1B run measures B and W apart); ZB-H1, which splits already, is unchanged.
TEST(Schedule, SplitBackwardPutsEachBackwardsWRightAfterItsB) {
  EXPECT_EQ(text(shape(Schedule::OneFOneB, 4, 6, 1, true), 0),
            "F0 F1 F2 F3 B0 W0 F4 B1 W1 F5 B2 W2 B3 W3 B4 W4 B5 W5");
  EXPECT_EQ(text(shape(Schedule::OneFOneB, 2, 3, 1, true), 1), "F0 B0 W0 F1 B1 W1 F2 B2 W2");
  for (int stage = 0; stage < 4; ++stage)
    EXPECT_EQ(stageSchedule(shape(Schedule::ZbH1, 4, 8, 1, true), stage),
              stageSchedule(shape(Schedule::ZbH1, 4, 8), stage));
  for (const PipelineShape& plain : {shape(Schedule::GPipe, 3, 5), shape(Schedule::OneFOneB, 4, 7),
                                     shape(Schedule::Interleaved, 2, 4, 2)}) {
    PipelineShape split = plain;
    split.split_backward = true;
    EXPECT_FALSE(splitsBackward(plain));
    EXPECT_TRUE(splitsBackward(split));
    for (int stage = 0; stage < plain.stages; ++stage) {
      // Joining each B with the W after it gives the plain order back.
      std::vector<PipelineOp> joined;
      const std::vector<PipelineOp> ops = stageSchedule(split, stage);
      for (size_t i = 0; i < ops.size(); ++i) {
        if (ops[i].kind != Kind::BackwardInput) {
          EXPECT_NE(ops[i].kind, Kind::Backward);
          EXPECT_NE(ops[i].kind, Kind::BackwardWeight);
          joined.push_back(ops[i]);
          continue;
        }
        ASSERT_LT(i + 1, ops.size());
        EXPECT_EQ(ops[i + 1], (PipelineOp{Kind::BackwardWeight, ops[i].microbatch, ops[i].chunk}));
        joined.push_back({Kind::Backward, ops[i].microbatch, ops[i].chunk});
        ++i;
      }
      EXPECT_EQ(joined, stageSchedule(plain, stage)) << "stage " << stage;
    }
  }
}

std::string describe(const PipelineShape& s) {
  std::ostringstream os;
  os << storage::scheduleName(s.schedule) << " p" << s.stages << " m" << s.microbatches << " v"
     << s.virtual_stages << (s.split_backward ? " split" : "");
  return os.str();
}

std::vector<PipelineShape> everyShape() {
  std::vector<PipelineShape> shapes;
  for (int p = 1; p <= 5; ++p) {
    for (int m = 1; m <= 12; ++m) {
      for (bool split : {false, true}) {
        for (Schedule sch : {Schedule::GPipe, Schedule::OneFOneB, Schedule::ZbH1})
          shapes.push_back(shape(sch, p, m, 1, split));
        for (int v = 1; v <= 3; ++v) {
          const PipelineShape s = shape(Schedule::Interleaved, p, m, v, split);
          if (scheduleProblem(s, int64_t{p} * v).empty()) shapes.push_back(s);
        }
      }
    }
  }
  return shapes;
}

TEST(Schedule, EveryPassRunsOnceAfterWhatItNeeds) {
  for (const PipelineShape& s : everyShape()) {
    SCOPED_TRACE(describe(s));
    for (int stage = 0; stage < s.stages; ++stage) {
      const auto ops = stageSchedule(s, stage);
      const size_t kinds = splitsBackward(s) ? 3 : 2;
      ASSERT_EQ(ops.size(), kinds * s.microbatches * s.virtual_stages);
      std::set<std::tuple<Kind, int, int>> seen;
      for (const PipelineOp& op : ops) {
        EXPECT_TRUE(seen.insert({op.kind, op.microbatch, op.chunk}).second) << passName(op, 2);
        EXPECT_EQ(op.kind == Kind::Backward, !splitsBackward(s) && op.kind != Kind::Forward);
        // What a pass needs on its own stage comes earlier in the stage's order.
        for (const PassRef& dep : passDependencies(s, stage, op)) {
          if (dep.stage != stage) continue;
          EXPECT_TRUE(seen.count({dep.op.kind, dep.op.microbatch, dep.op.chunk})) << passName(op, 2);
        }
      }
    }
  }
}

// The engine's pipeline channels carry no tags: a receiver takes a sender's messages in the order they
// were sent. So, for every pair of stages, the stage that sends must send in the order the other
// receives, activations and gradients together (pp 2 sends both ways between the same two stages).
TEST(Schedule, EveryChannelReceivesInTheOrderItWasSent) {
  for (const PipelineShape& s : everyShape()) {
    SCOPED_TRACE(describe(s));
    const int last = s.stages * s.virtual_stages - 1;
    // (from, to) -> messages, each (is gradient, micro-batch, receiving global chunk).
    std::map<std::pair<int, int>, std::vector<std::tuple<bool, int, int>>> sent, received;
    for (int stage = 0; stage < s.stages; ++stage) {
      for (const PipelineOp& op : stageSchedule(s, stage)) {
        const int g = globalChunk(s, stage, op.chunk);
        if (op.kind == Kind::Forward) {
          if (g > 0) received[{(g - 1) % s.stages, stage}].push_back({false, op.microbatch, g});
          if (g < last) sent[{stage, (g + 1) % s.stages}].push_back({false, op.microbatch, g + 1});
        } else if (op.kind != Kind::BackwardWeight) {
          if (g < last) received[{(g + 1) % s.stages, stage}].push_back({true, op.microbatch, g});
          if (g > 0) sent[{stage, (g - 1) % s.stages}].push_back({true, op.microbatch, g - 1});
        }
      }
    }
    EXPECT_EQ(sent, received);
  }
}

TEST(Schedule, DependenciesFollowTheModelsChunks) {
  const PipelineShape s = shape(Schedule::Interleaved, 4, 8, 2);
  // Chunk 1 of stage 0 is model chunk 4: its input comes from model chunk 3, the last stage's chunk 0.
  EXPECT_EQ(passDependencies(s, 0, {Kind::Forward, 5, 1}),
            (std::vector<PassRef>{{3, {Kind::Forward, 5, 0}}}));
  EXPECT_EQ(passDependencies(s, 2, {Kind::Forward, 5, 1}),
            (std::vector<PassRef>{{1, {Kind::Forward, 5, 1}}}));
  EXPECT_TRUE(passDependencies(s, 0, {Kind::Forward, 5, 0}).empty());
  // The last model chunk's backward starts from its own forward (the loss); the others from the next.
  EXPECT_EQ(passDependencies(s, 3, {Kind::Backward, 2, 1}),
            (std::vector<PassRef>{{3, {Kind::Forward, 2, 1}}}));
  EXPECT_EQ(passDependencies(s, 3, {Kind::Backward, 2, 0}),
            (std::vector<PassRef>{{0, {Kind::Backward, 2, 1}}}));
  const PipelineShape zb = shape(Schedule::ZbH1, 4, 8);
  EXPECT_EQ(passDependencies(zb, 1, {Kind::BackwardInput, 3, 0}),
            (std::vector<PassRef>{{2, {Kind::BackwardInput, 3, 0}}}));
  EXPECT_EQ(passDependencies(zb, 1, {Kind::BackwardWeight, 3, 0}),
            (std::vector<PassRef>{{1, {Kind::BackwardInput, 3, 0}}}));
}

// Micro-batches between their forward and their last backward pass, at most, per stage: what a stage
// holds of saved activations at its worst moment, in micro-batches' (chunks') worth.
int peakInFlight(const PipelineShape& s, int stage) {
  int held = 0, peak = 0;
  for (const PipelineOp& op : stageSchedule(s, stage)) {
    if (op.kind == Kind::Forward) peak = std::max(peak, ++held);
    if (op.kind == Kind::Backward || op.kind == Kind::BackwardWeight) --held;
  }
  return peak;
}

TEST(Schedule, ZbH1HoldsOneFOneBsPeakAndGpipeHoldsEveryMicrobatch) {
  for (int p = 2; p <= 5; ++p) {
    for (int m = p; m <= 12; ++m) {
      int oneFOneB = 0, zb = 0;
      for (int stage = 0; stage < p; ++stage) {
        EXPECT_EQ(peakInFlight(shape(Schedule::GPipe, p, m), stage), m);
        EXPECT_EQ(peakInFlight(shape(Schedule::OneFOneB, p, m), stage), p - stage);
        oneFOneB = std::max(oneFOneB, peakInFlight(shape(Schedule::OneFOneB, p, m), stage));
        zb = std::max(zb, peakInFlight(shape(Schedule::ZbH1, p, m), stage));
      }
      EXPECT_EQ(zb, oneFOneB) << "p " << p << " m " << m;
    }
  }
  // Interleaved: stage 0 of pp 4, v 2 holds its 10 warm-up forwards (chunks), plus the one before its
  // first backward: 11 chunks, 5.5 micro-batches of the stage's layers.
  EXPECT_EQ(peakInFlight(shape(Schedule::Interleaved, 4, 8, 2), 0), 11);
}

TEST(Schedule, ProblemsNameTheRuleBroken) {
  EXPECT_EQ(scheduleProblem(shape(Schedule::OneFOneB, 4, 3), 8), "");
  EXPECT_EQ(scheduleProblem(shape(Schedule::Interleaved, 4, 8, 2), 8), "");
  EXPECT_EQ(scheduleProblem(shape(Schedule::Interleaved, 4, 8, 1), 4), "");
  EXPECT_EQ(scheduleProblem(shape(Schedule::OneFOneB, 4, 8, 2), 8),
            "parallel.virtual_stages = 2 needs schedule \"interleaved\", got \"1f1b\"");
  EXPECT_EQ(scheduleProblem(shape(Schedule::ZbH1, 2, 8, 3), 12),
            "parallel.virtual_stages = 3 needs schedule \"interleaved\", got \"zb-h1\"");
  EXPECT_EQ(scheduleProblem(shape(Schedule::Interleaved, 4, 8, 2), 12),
            "schedule \"interleaved\": model.n_layers (12) is not divisible into pp x virtual_stages (4 x 2) "
            "chunks");
  EXPECT_EQ(scheduleProblem(shape(Schedule::Interleaved, 4, 6, 2), 8),
            "schedule \"interleaved\": parallel.microbatches (6) is not a multiple of pp (4)");
  EXPECT_EQ(scheduleProblem(shape(Schedule::Interleaved, 1, 4, 2), 8),
            "parallel.virtual_stages = 2 needs pp >= 2, got pp = 1");
  EXPECT_EQ(scheduleProblem(shape(Schedule::Interleaved, 2, 4, 0), 8),
            "parallel.virtual_stages must be >= 1, got 0");
  EXPECT_THROW(stageSchedule(shape(Schedule::Interleaved, 4, 6, 2), 0), std::invalid_argument);
  EXPECT_THROW(stageSchedule(shape(Schedule::OneFOneB, 4, 6), 4), std::invalid_argument);
}

TEST(Schedule, FormatsOneLinePerStage) {
  EXPECT_EQ(formatSchedule(shape(Schedule::ZbH1, 2, 2)),
            "stage 0: F0 F1 B0 W0 B1 W1\n"
            "stage 1: F0 B0 F1 B1 W0 W1\n");
  EXPECT_EQ(formatSchedule(shape(Schedule::Interleaved, 2, 2, 2)),
            "stage 0: F0.0 F1.0 F0.1 F1.1 B0.1 B1.1 B0.0 B1.0\n"
            "stage 1: F0.0 F1.0 F0.1 B0.1 F1.1 B1.1 B0.0 B1.0\n");
}

}  // namespace
}  // namespace moescope::engine
