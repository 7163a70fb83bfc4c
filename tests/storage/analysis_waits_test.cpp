// Who waited for whom, on hand-built calls. Two tp ranks and a pipeline neighbour:
//
//   rank 0  |--wait 0→10 (on 1)--|==tp 10→12==|      |-wait 20→50 (on 2)-|==recv 50→51==|
//   rank 1  |==compute 0→10==|==tp 10→12==|
//   rank 2  |====================== compute 0→50 =========|==send 50→50.5==|
//           |-- barrier wait 60→70, peer unknown --| (rank 1: a call recorded without identity)
//
// Rank 0 waited 10 on rank 1 (in comm.tp_allreduce) and 30 on rank 2 (in comm.pp_sendrecv); rank 1
// waited 10 with no known peer. Stragglers: rank 2 (30 of 40 attributed, 75%), rank 1 (10, 25%).
#include "storage/analysis_waits.h"

#include <gtest/gtest.h>

#include <limits>

#include "storage/shard_meta.h"

namespace moescope::storage {
namespace {

SpanRecord rec(int32_t track, int64_t start, int64_t end, Category c, int32_t peer = kNone) {
  SpanRecord s;
  s.track = track;
  s.start = start;
  s.end = end;
  s.category = c;
  s.peer = peer;
  if (peer != kNone) s.comm = 1;
  return s;
}

Trace threeRanks() {
  Trace t;
  for (int32_t r = 0; r < 3; ++r) {
    t.ranks.push_back({r, r == 2 ? 1 : 0, r == 1 ? 1 : 0, 0, kNone, "h"});
    t.tracks.push_back({r, r, TrackKind::HostThread, "host", 0, kNone, kNone});
  }
  addSpan(t, rec(0, 0, 10, Category::Wait, 1));
  addSpan(t, rec(0, 10, 12, Category::CommTpAllreduce, 1));
  addSpan(t, rec(0, 20, 50, Category::Wait, 2));
  addSpan(t, rec(0, 50, 51, Category::CommPpSendrecv, 2));
  addSpan(t, rec(1, 0, 10, Category::ComputeExpert));
  addSpan(t, rec(1, 10, 12, Category::CommTpAllreduce));
  addSpan(t, rec(1, 60, 70, Category::Wait));
  addSpan(t, rec(2, 0, 50, Category::ComputeAttention));
  addSpan(t, rec(2, 50, 51, Category::CommPpSendrecv, 0));
  finishTrace(t);
  return t;
}

// Waits of a crafted file whose sum passes int64 (each time within the run file's range) stop at the
// limit rather than overflow (found by tests/fuzz under UBSan: stats --json of such a file).
TEST(AnalysisWaits, SumsBeyondInt64SaturateInsteadOfOverflowing) {
  Trace t;
  // Ranks 0-2 each wait the whole run's range on rank 3: 3 x 2^62 ns in all.
  for (int32_t r = 0; r < 4; ++r) {
    t.ranks.push_back({r, 0, r, 0, kNone, "h"});
    t.tracks.push_back({r, r, TrackKind::HostThread, "host", 0, kNone, kNone});
    addSpan(t, r < 3 ? rec(r, 0, kMaxTime, Category::Wait, 3) : rec(r, 0, kMaxTime, Category::ComputeExpert));
  }
  finishTrace(t);
  const WaitsReport w = waitsReport(t);
  EXPECT_EQ(w.total_ns, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(w.attributed_ns, std::numeric_limits<int64_t>::max());
  ASSERT_FALSE(w.stragglers.empty());
  EXPECT_EQ(w.stragglers[0].rank, 3);
  EXPECT_EQ(w.stragglers[0].caused_ns, std::numeric_limits<int64_t>::max());
}

TEST(AnalysisWaits, AttributesEachWaitToTheRankWaitedForAndItsCategory) {
  const WaitsReport w = waitsReport(threeRanks());
  EXPECT_EQ(w.total_ns, 50);
  EXPECT_EQ(w.attributed_ns, 40);
  ASSERT_EQ(w.ranks.size(), 3u);
  EXPECT_EQ(w.ranks[0].waited_ns, 40);
  EXPECT_EQ(w.ranks[0].by_category[static_cast<size_t>(Category::CommTpAllreduce)], 10);
  EXPECT_EQ(w.ranks[0].by_category[static_cast<size_t>(Category::CommPpSendrecv)], 30);
  EXPECT_EQ(w.ranks[0].on, (std::map<int32_t, int64_t>{{1, 10}, {2, 30}}));
  EXPECT_EQ(w.ranks[1].on, (std::map<int32_t, int64_t>{{kNone, 10}}));
  EXPECT_EQ(w.ranks[1].by_category[static_cast<size_t>(Category::Wait)], 10);  // a barrier: no transfer
  EXPECT_EQ(w.ranks[2].waited_ns, 0);
  EXPECT_EQ(w.stragglers, (std::vector<Straggler>{{2, 30, 0.75}, {1, 10, 0.25}}));
}

// A chain: rank 2 waits 0→30 on rank 0, which waits 10→30 on rank 1 (computing all along): rank 1
// caused 20 of rank 2's wait, rank 0 the first 10 (its own work), and all 20 of rank 0's.
TEST(AnalysisWaits, WaitingIsPassedAlongToTheRankThatHeldItUp) {
  Trace t;
  for (int32_t r = 0; r < 3; ++r) t.tracks.push_back({r, r, TrackKind::HostThread, "host", 0, kNone, kNone});
  addSpan(t, rec(0, 0, 10, Category::ComputeAttention));
  addSpan(t, rec(0, 10, 30, Category::Wait, 1));
  addSpan(t, rec(0, 30, 31, Category::CommTpAllreduce, 1));
  addSpan(t, rec(1, 0, 30, Category::ComputeExpert));
  addSpan(t, rec(1, 30, 31, Category::CommTpAllreduce));
  addSpan(t, rec(2, 0, 30, Category::Wait, 0));
  addSpan(t, rec(2, 30, 31, Category::CommPpSendrecv, 0));
  finishTrace(t);
  const WaitsReport w = waitsReport(t);
  EXPECT_EQ(w.ranks[2].on, (std::map<int32_t, int64_t>{{0, 10}, {1, 20}}));
  EXPECT_EQ(w.ranks[0].on, (std::map<int32_t, int64_t>{{1, 20}}));
  EXPECT_EQ(w.stragglers, (std::vector<Straggler>{{1, 40, 0.8}, {0, 10, 0.2}}));
}

TEST(AnalysisWaits, ARunWithoutWaitsHasNoStragglers) {
  Trace t;
  t.tracks.push_back({0, 0, TrackKind::HostThread, "host", 0, kNone, kNone});
  addSpan(t, rec(0, 0, 10, Category::ComputeAttention));
  finishTrace(t);
  const WaitsReport w = waitsReport(t);
  EXPECT_EQ(w.total_ns, 0);
  EXPECT_TRUE(w.stragglers.empty());
  ASSERT_EQ(w.ranks.size(), 1u);
}

TEST(AnalysisWaits, RankClocksComeFromTheMergedRunsMeta) {
  Trace t;
  t.meta = {{rankMetaKey(1, kClockOffsetKey), "-700"},
            {rankMetaKey(1, kClockUncertaintyKey), "25"},
            {rankMetaKey(1, kClockDriftKey), "1.5"},
            {rankMetaKey(1, kClockSourceKey), "mpi ping-pong"},
            {rankMetaKey(1, "process"), "1"},
            {rankMetaKey(0, kClockSourceKey), "reference (process 0)"},
            {rankMetaKey(0, "process"), "0"},
            {"rank.x.clock.offset_ns", "5"},  // not a rank: ignored
            {"run.processes", "2"}};
  const std::vector<RankClock> c = rankClocks(t);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0], (RankClock{0, 0, 0, 0, 0, "reference (process 0)"}));
  EXPECT_EQ(c[1], (RankClock{1, 1, -700, 25, 1.5, "mpi ping-pong"}));
}

}  // namespace
}  // namespace moescope::storage
