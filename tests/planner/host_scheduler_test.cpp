// How the simulation shares a CPU host's cores (planner/host_scheduler.h): processor sharing, time
// slices with a queue per core (a woken thread takes its waker's core when none is idle), what the
// slices change in a predicted pipeline, and the slice's fit from a run's waiting transfers.
#include "planner/host_scheduler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "planner/cost_model.h"
#include "planner/plan_target.h"
#include "planner/simulate.h"
#include "planner/slice_fit.h"
#include "storage/run_reader.h"
#include "tests/common/sample_path.h"
#include "tests/planner/equal_layers_model.h"

namespace moescope::planner {
namespace {

using storage::Category;
using storage::Schedule;
constexpr double kMs = 1e6;

TEST(HostScheduler, ProcessorSharingDividesTheCoresEvenly) {
  HostScheduler host({2, 0}, 3, 1);
  host.wake(0, 0);
  host.wake(1, 0);
  EXPECT_DOUBLE_EQ(host.speed(0), 1);
  host.wake(2, 0, 0);  // no waker loses its core under processor sharing
  for (int s = 0; s < 3; ++s) EXPECT_DOUBLE_EQ(host.speed(s), 2.0 / 3);
  EXPECT_EQ(host.nextChange(), std::numeric_limits<double>::infinity());
  host.block(1, 1);
  EXPECT_DOUBLE_EQ(host.speed(0), 1);
  EXPECT_DOUBLE_EQ(host.speed(1), 0);
}

// One core, slices of 4 ms: a woken thread takes its waker's core; the waker gets it back when the
// slice ends, or at once when the thread ahead blocks.
TEST(HostScheduler, AWokenThreadTakesItsWakersCoreForASlice) {
  HostScheduler host({1, 4 * kMs}, 2, 1);
  host.wake(0, 0);
  EXPECT_DOUBLE_EQ(host.speed(0), 1);
  EXPECT_EQ(host.wake(1, 10 * kMs, 0), 0);
  EXPECT_DOUBLE_EQ(host.speed(0), 0);
  EXPECT_DOUBLE_EQ(host.speed(1), 1);
  EXPECT_DOUBLE_EQ(host.nextChange(), 14 * kMs);
  host.advance(14 * kMs);
  EXPECT_DOUBLE_EQ(host.speed(0), 1);
  EXPECT_DOUBLE_EQ(host.speed(1), 0);
  EXPECT_DOUBLE_EQ(host.nextChange(), 18 * kMs);
  host.block(0, 15 * kMs);
  EXPECT_DOUBLE_EQ(host.speed(1), 1);
  EXPECT_EQ(host.nextChange(), std::numeric_limits<double>::infinity());
}

// Two cores: a thread woken by nobody queues (on the shortest queue before it ever ran); a core's
// slice passes its core within its own queue; a core left idle pulls from the other's queue.
TEST(HostScheduler, EachCoreHasItsQueueAndAnIdleCorePulls) {
  HostScheduler host({2, 4 * kMs}, 4, 1);
  host.wake(0, 0);                       // core 0
  host.wake(1, 1 * kMs);                 // core 1
  EXPECT_EQ(host.wake(2, 2 * kMs), -1);  // queued on core 0
  EXPECT_DOUBLE_EQ(host.speed(2), 0);
  EXPECT_EQ(host.wake(3, 2 * kMs), -1);          // queued on core 1
  EXPECT_DOUBLE_EQ(host.nextChange(), 4 * kMs);  // core 0's slice, from 0
  host.advance(4 * kMs);
  EXPECT_DOUBLE_EQ(host.speed(0), 0);
  EXPECT_DOUBLE_EQ(host.speed(2), 1);
  EXPECT_DOUBLE_EQ(host.nextChange(), 5 * kMs);  // core 1's, from 1 ms
  host.block(2, 4.5 * kMs);                      // core 0 takes the head of its queue: stage 0
  EXPECT_DOUBLE_EQ(host.speed(0), 1);
  host.block(0, 4.6 * kMs);  // core 0's queue is empty: it pulls stage 3 from core 1's
  EXPECT_DOUBLE_EQ(host.speed(3), 1);
  EXPECT_DOUBLE_EQ(host.speed(1), 1);
  EXPECT_EQ(host.nextChange(), std::numeric_limits<double>::infinity());
}

TEST(HostScheduler, FractionalCoresRunEachThreadAtTheirShare) {
  for (const double slice : {0.0, 4 * kMs}) {
    HostScheduler host({1.5, slice}, 2, 1);
    host.wake(0, 0);
    EXPECT_DOUBLE_EQ(host.speed(0), 1);
    host.wake(1, 0);
    EXPECT_DOUBLE_EQ(host.speed(0), 0.75);
    EXPECT_DOUBLE_EQ(host.speed(1), 0.75);
  }
}

storage::Trace gpuSample() {
  return storage::RunReader::open(moescope::testing::samplePath("ppmoe-tp2-h200.moescope"))->load();
}

// The GPU sample's costs made 1000 times longer (ms-long compute spans, like a CPU run's; its
// transfers stay tens of us), on `cores` shared host cores.
CostModel cpuLike(double cores, double slice_ms) {
  CostModel model = fitCostModel(gpuSample(), "sample");
  for (auto& [key, entries] : model.layers)
    for (TemplateEntry& e : entries) e.segment.ns *= 1000;
  for (auto& [key, cost] : model.experts) cost.ns *= 1000;
  model.host = {cores, slice_ms * kMs};
  return model;
}

PlanTarget pipeline(const CostModel& model, int pp, int microbatches,
                    Schedule schedule = Schedule::OneFOneB) {
  PlanTarget t = targetOf(model.run, 4);
  t.tp = 1;
  t.pp = pp;
  t.microbatches = microbatches;
  t.schedule = schedule;
  return t;
}

// Every span of a predicted run: rank, start, end, name.
std::vector<std::tuple<int32_t, int64_t, int64_t, std::string>> spansOf(const storage::Trace& t) {
  std::vector<std::tuple<int32_t, int64_t, int64_t, std::string>> out;
  for (size_t id = 0; id < t.tracks.size() && id < t.spans.size(); ++id)
    for (size_t i = 0; i < t.spans[id].size(); ++i)
      out.emplace_back(t.tracks[id].rank, t.spans[id].start[i], t.spans[id].endAt(i),
                       std::string(t.name(t.spans[id].name[i])));
  return out;
}

std::vector<std::tuple<int32_t, int64_t, int64_t, std::string>> predicted(double cores, double slice_ms,
                                                                          int pp, int microbatches) {
  const CostModel model = cpuLike(cores, slice_ms);
  return spansOf(predict(model, pipeline(model, pp, microbatches)).trace);
}

// With no more rank threads than cores nobody waits for a core: the slices change nothing, span for
// span.
TEST(Planner, TimeSlicesChangeNothingWhenEveryThreadHasACore) {
  const auto two = predicted(2, 0, 2, 4);
  ASSERT_FALSE(two.empty());
  EXPECT_EQ(predicted(2, 4, 2, 4), two);
  EXPECT_EQ(predicted(16, 4, 4, 8), predicted(16, 0, 4, 8));
  // Four threads on two cores: they do, the same way every time.
  const auto sliced = predicted(2, 4, 4, 8);
  EXPECT_NE(sliced, predicted(2, 0, 4, 8));
  EXPECT_EQ(sliced, predicted(2, 4, 4, 8));
}

// The first span named `name` on `rank` in micro-batch `mb` and phase `phase`: [start, end) in ms
// from the run's start.
std::pair<double, double> spanOf(const storage::Trace& t, int rank, const std::string& name, int mb,
                                 storage::Phase phase) {
  for (size_t id = 0; id < t.tracks.size(); ++id) {
    if (t.tracks[id].rank != rank || t.tracks[id].kind != storage::TrackKind::HostThread) continue;
    const storage::SpanColumns& c = t.spans[id];
    for (size_t i = 0; i < c.size(); ++i)
      if (t.name(c.name[i]) == name && c.microbatch[i] == mb && c.phase[i] == phase && c.stepAt(i) == 0)
        return {static_cast<double>(c.start[i] - t.run.start_ns) / kMs,
                static_cast<double>(c.endAt(i) - t.run.start_ns) / kMs};
  }
  ADD_FAILURE() << name << " of micro-batch " << mb << " on rank " << rank;
  return {0, 0};
}

// Two stages of one 10 ms forward layer each on one core, slices of 4 ms. Stage 0's first forward
// ends at 10 ms and its send wakes stage 1, which takes the core: the send (free in itself) lasts
// until stage 1's slice ends at 14 ms, and only then does stage 0 start its second forward, 4 ms late
// (processor sharing starts it at 10 ms, at half speed). Stage 1's forward then alternates with it,
// 4 ms each: 10-14, 18-22 and 26-28 ms, ending at 28 ms where processor sharing ends it at 30.
TEST(Planner, ASenderThatWokeItsReceiverWaitsOutTheReceiversSlice) {
  CostModel m = test::equalLayersModel(2, 2, 2, 10 * kMs, 20 * kMs);
  m.run.backend = "cpu";
  PlanTarget t = targetOf(m.run, 1);
  t.schedule = Schedule::GPipe;
  t.microbatches = 2;
  const auto fw = storage::Phase::Forward;

  m.host = {1, 4 * kMs};
  const storage::Trace sliced = predict(m, t).trace;
  EXPECT_EQ(spanOf(sliced, 0, "send_activation", 0, fw), (std::pair<double, double>{10, 14}));
  EXPECT_EQ(spanOf(sliced, 0, "ffn", 1, fw).first, 14);
  EXPECT_EQ(spanOf(sliced, 1, "ffn", 0, fw), (std::pair<double, double>{10, 28}));

  m.host = {1, 0};
  const storage::Trace shared = predict(m, t).trace;
  EXPECT_EQ(spanOf(shared, 0, "send_activation", 0, fw), (std::pair<double, double>{10, 10}));
  EXPECT_EQ(spanOf(shared, 0, "ffn", 1, fw).first, 10);
  EXPECT_EQ(spanOf(shared, 1, "ffn", 0, fw), (std::pair<double, double>{10, 30}));
}

// The fit recovers the slice a run was simulated with from its waiting sends and receives (1F1B at
// pp 4, 8 micro-batches, 4 rank threads on 2 cores), and keeps the default when they never waited.
TEST(SliceFit, RecoversTheSliceARunWasSimulatedWith) {
  for (const double slice_ms : {2.0, 6.0}) {
    const CostModel model = cpuLike(2, slice_ms);
    storage::Trace run = predict(model, pipeline(model, 4, 8)).trace;
    const SliceFit fit = fitSlice(run, [](int32_t step) { return step == 0; });
    EXPECT_TRUE(fit.fitted) << slice_ms;
    EXPECT_GE(fit.waits, kSliceFitMinWaits);
    EXPECT_NEAR(fit.slice_ns / kMs, slice_ms, 0.15 * slice_ms) << fit.waits << " waits";
    // The cost model takes it from a CPU run.
    run.run.predicted = false;
    run.run.backend = "cpu";
    EXPECT_NEAR(fitCostModel(run, "simulated", 2).host.slice_ns / kMs, slice_ms, 0.15 * slice_ms);
    EXPECT_EQ(fitCostModel(run, "simulated", 2, 0).host.slice_ns, 0);  // --slice-ms 0
  }
  const CostModel shared = cpuLike(2, 0);
  const SliceFit none =
      fitSlice(predict(shared, pipeline(shared, 4, 8)).trace, [](int32_t) { return false; });
  EXPECT_FALSE(none.fitted);
  EXPECT_EQ(none.slice_ns, kDefaultSliceMs * kMs);
}

}  // namespace
}  // namespace moescope::planner
