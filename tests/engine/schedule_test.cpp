#include "engine/schedule.h"

#include <gtest/gtest.h>

namespace moescope::engine {
namespace {

std::string text(const std::vector<PipelineOp>& ops) {
  std::string s;
  for (const auto& op : ops) {
    s.push_back(op.kind == PipelineOp::Kind::Forward ? 'F' : 'B');
    s.append(std::to_string(op.microbatch));
    s.push_back(' ');
  }
  return s;
}

TEST(Schedule, GpipeRunsEveryForwardThenEveryBackward) {
  EXPECT_EQ(text(gpipeSchedule(4, 1, 3)), "F0 F1 F2 B0 B1 B2 ");
}

TEST(Schedule, OneFOneBWarmsUpThenAlternates) {
  EXPECT_EQ(text(oneFOneBSchedule(4, 0, 6)), "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5 ");
  EXPECT_EQ(text(oneFOneBSchedule(4, 2, 6)), "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5 ");
  EXPECT_EQ(text(oneFOneBSchedule(4, 3, 3)), "F0 B0 F1 B1 F2 B2 ");
  // Fewer micro-batches than stages: the warm-up is capped.
  EXPECT_EQ(text(oneFOneBSchedule(4, 0, 2)), "F0 F1 B0 B1 ");
}

TEST(Schedule, EveryMicrobatchRunsForwardBeforeBackwardOnce) {
  for (const char* name : {"gpipe", "1f1b"}) {
    for (int p = 1; p <= 4; ++p) {
      for (int s = 0; s < p; ++s) {
        for (int m = 1; m <= 9; ++m) {
          const auto ops = pipelineSchedule(name, p, s, m);
          ASSERT_EQ(ops.size(), static_cast<size_t>(2 * m));
          std::vector<int> fwd(m, -1), bwd(m, -1);
          int next_f = 0, next_b = 0;
          for (size_t i = 0; i < ops.size(); ++i) {
            auto& slot = ops[i].kind == PipelineOp::Kind::Forward ? fwd : bwd;
            EXPECT_EQ(slot[ops[i].microbatch], -1);
            slot[ops[i].microbatch] = static_cast<int>(i);
            // Forwards and backwards each go in micro-batch order (the pipeline channels are FIFO).
            EXPECT_EQ(ops[i].microbatch, ops[i].kind == PipelineOp::Kind::Forward ? next_f++ : next_b++);
          }
          for (int k = 0; k < m; ++k) EXPECT_LT(fwd[k], bwd[k]);
        }
      }
    }
  }
  EXPECT_THROW(pipelineSchedule("zigzag", 2, 0, 2), std::invalid_argument);
}

}  // namespace
}  // namespace moescope::engine
