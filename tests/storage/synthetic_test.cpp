#include "storage/synthetic.h"

#include <gtest/gtest.h>

#include <set>

#include "storage/activity.h"
#include "storage/analysis_bubbles.h"
#include "storage/run_reader.h"
#include "tests/common/temp_dir.h"

namespace moescope::storage {
namespace {

TEST(Synthetic, ShapedLikeAPipelineRun) {
  SyntheticOptions o;
  o.stages = 4;
  o.tp = 2;
  o.dp = 2;
  o.microbatches = 8;
  o.spans = 20000;
  const Trace t = syntheticTrace(o);
  EXPECT_EQ(t.ranks.size(), 16u);
  EXPECT_EQ(t.tracks.size(), 16u);
  EXPECT_NEAR(static_cast<double>(t.spanCount()), 20000.0, 20000.0 * 0.25);
  EXPECT_EQ(t.run.pp, 4);
  EXPECT_FALSE(t.steps.empty());
  // Every category of a PPMoE run with tp and dp shows up.
  std::set<Category> seen;
  for (const auto& c : t.spans) seen.insert(c.category.begin(), c.category.end());
  for (Category c :
       {Category::ComputeAttention, Category::ComputeExpert, Category::MoeSlice, Category::CommTpAllreduce,
        Category::CommPpSendrecv, Category::CommDpAllreduce, Category::Optimizer, Category::Wait}) {
    EXPECT_TRUE(seen.count(c)) << categoryName(c);
  }
  // Spans of a host track do not overlap (the engine's phases run one after another).
  for (const auto& c : t.spans) {
    for (size_t i = 1; i < c.size(); ++i) ASSERT_LE(c.endAt(i - 1), c.start[i]);
  }
}

TEST(Synthetic, BubblesComeNearTheSchedulesShare) {
  SyntheticOptions o;
  o.stages = 4;
  o.tp = 1;
  o.microbatches = 8;
  o.schedule = Schedule::GPipe;
  o.spans = 5000;
  const Trace t = syntheticTrace(o);
  for (const StageStepBubble& b : bubblesPerStage(bubbles(hostActivity(t), t.run))) {
    // Pipeline bubbles plus the optimizer tail: a little above (p - 1) / (m + p - 1) = 3 / 11.
    EXPECT_GT(b.share, 3.0 / 11.0 - 0.02) << "stage " << b.stage;
    EXPECT_LT(b.share, 3.0 / 11.0 + 0.06) << "stage " << b.stage;
  }
}

TEST(Synthetic, TheSameOptionsGiveTheSameRunOnDiskAndInMemory) {
  testing::TempRunFile file;
  SyntheticOptions o;
  o.spans = 3000;
  const int64_t written = writeSyntheticRun(file.path(), o);
  Trace fromFile = RunReader::open(file.path())->load();
  Trace inMemory = syntheticTrace(o);
  EXPECT_EQ(written, static_cast<int64_t>(inMemory.spanCount()));
  EXPECT_EQ(fromFile.spans, inMemory.spans);
  EXPECT_EQ(fromFile.strings, inMemory.strings);
  EXPECT_EQ(fromFile.steps, inMemory.steps);
  EXPECT_EQ(fromFile.ranks, inMemory.ranks);
  EXPECT_EQ(fromFile.tracks, inMemory.tracks);
  EXPECT_EQ(fromFile.run.status, RunStatus::Complete);
}

}  // namespace
}  // namespace moescope::storage
