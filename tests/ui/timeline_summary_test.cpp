// What the timeline prepares once per load: nesting lanes (parents above children, the longest of
// spans starting together first), the overview's buckets, each GPU's busy time, stream roles by what
// ran on them, the GPU records no span launched, and the extent that includes them.
#include "ui/timeline_summary.h"

#include <QTest>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;
using storage::Phase;

namespace {

std::vector<uint8_t> lanesOf(const storage::Trace& t, int* count) {
  return packLanes(t.spans[0], count);
}

}  // namespace

class TimelineSummaryTest : public QObject {
  Q_OBJECT

 private slots:
  void aFlatTrackHasOneLaneAndNoIndex() {
    const auto t = test::makeTrace(1, {{0, 0, 10}, {0, 10, 20}, {0, 30, 40}});
    int lanes = 0;
    QCOMPARE(lanesOf(t, &lanes), (std::vector<uint8_t>{0, 0, 0}));
    QCOMPARE(lanes, 1);
    const TimelineSummary s = summarizeTrace(t);
    QCOMPARE(s.laneCount(0), 1);
    QVERIFY(s.tracks[0].lanes.empty());
    QVERIFY(s.tracks[0].laneOf.empty());
  }

  void nestedSpansGoOneLaneBelowTheirParent() {
    // [0, 100) holds [0, 40) (same start, shorter) and [50, 90); [50, 90) holds [60, 70); [95, 120)
    // overlaps its parent's end: it goes below it.
    const auto t = test::makeTrace(1, {{0, 0, 100}, {0, 0, 40}, {0, 50, 90}, {0, 60, 70}, {0, 95, 120}});
    // Sorted by (start, end): [0,40) [0,100) [50,90) [60,70) [95,120).
    int lanes = 0;
    QCOMPARE(lanesOf(t, &lanes), (std::vector<uint8_t>{1, 0, 1, 2, 1}));
    QCOMPARE(lanes, 3);
    const TimelineSummary s = summarizeTrace(t);
    QCOMPARE(s.tracks[0].lanes.size(), size_t(3));
    QCOMPARE(s.tracks[0].lanes[1], (std::vector<uint32_t>{0, 2, 4}));
    QCOMPARE(s.tracks[0].laneOfSpan(3), 2);
  }

  void theOverviewsBucketsHoldTheShares() {
    // 64 spans of 900 ns every 1 µs, categories attention, expert, expert, all-reduce in turn, forward
    // then backward by halves; buckets of 32 spans (2^15 ns) from an overview made from 16 spans on.
    storage::Trace t = test::makeTrace(1, {});
    const Category cycle[] = {Category::ComputeAttention, Category::ComputeExpert, Category::ComputeExpert,
                              Category::CommTpAllreduce};
    for (int i = 0; i < 64; ++i) {
      storage::addSpan(t, {.start = i * 1000,
                           .end = i * 1000 + 900,
                           .category = cycle[i % 4],
                           .phase = i < 32 ? Phase::Forward : Phase::Backward});
    }
    storage::finishTrace(t);
    SummaryOptions o;
    o.overviewFromSpans = 16;
    const TimelineSummary s = summarizeTrace(t, o);
    QCOMPARE(s.tracks[0].overview.size(), size_t(1));
    const LaneOverview& ov = s.tracks[0].overview[0];
    QCOMPARE(ov.origin, int64_t(0));
    QCOMPARE(ov.width(), int64_t(32768));  // 63.9 µs x 32 / 64 spans, up to a power of two
    QCOMPARE(ov.buckets.size(), size_t(2));
    const OverviewBucket& b = ov.buckets[0];  // [0, 32768): spans 0..32, the 33rd cut at 32768
    QCOMPARE(b.category[0], uint8_t(Category::ComputeExpert));
    QVERIFY(b.category[1] == uint8_t(Category::ComputeAttention) ||
            b.category[1] == uint8_t(Category::CommTpAllreduce));
    QVERIFY(std::abs(b.busy - 230) <= 2);      // 900 of every 1000 ns
    QVERIFY(std::abs(b.share[0] - 115) <= 3);  // half of it expert
    // Forward: spans 0..31, 28,800 ns; backward: the first 768 ns of span 32.
    QCOMPARE(b.forward, uint8_t(224));
    QCOMPARE(b.backward, uint8_t(6));
    QVERIFY(ov.buckets[1].backward > 200);
    QCOMPARE(b.category[3], kNoCategory);  // three categories only
  }

  // ZB-H1's weight passes count as backward time (the rank header shades them so).
  void weightPassesAreBackwardTime() {
    storage::Trace t = test::makeTrace(1, {});
    for (int i = 0; i < 32; ++i) {
      storage::addSpan(t, {.start = i * 1000,
                           .end = i * 1000 + 1000,
                           .phase = i % 2 ? Phase::BackwardWeight : Phase::Backward});
    }
    storage::finishTrace(t);
    SummaryOptions o;
    o.overviewFromSpans = 16;
    const TimelineSummary s = summarizeTrace(t, o);
    const LaneOverview& ov = s.tracks[0].overview.at(0);
    QCOMPARE(ov.buckets.size(), size_t(1));
    QCOMPARE(ov.buckets[0].backward, uint8_t(249));  // 32,000 of 32,768 ns: 249.0 of 255
    QCOMPARE(ov.buckets[0].forward, uint8_t(0));
  }

  void aSmallLaneHasNoOverview() {
    const auto t = test::makeTrace(1, {{0, 0, 10}, {0, 20, 30}});
    QVERIFY(summarizeTrace(t).tracks[0].overview.empty());
  }

  void aGpusBusyTimeIsTheUnionOfItsStreams() {
    DeviceBusy d;
    d.start = {0, 200, 500};
    d.end = {100, 300, 600};
    d.before = {0, 100, 200};
    QCOMPARE(d.busyIn(0, 600), int64_t(300));
    QCOMPARE(d.busyIn(50, 250), int64_t(100));  // 50 of the first, 50 of the second
    QCOMPARE(d.busyIn(100, 200), int64_t(0));
    QCOMPARE(d.busyIn(210, 220), int64_t(10));
    QCOMPARE(d.busyIn(700, 800), int64_t(0));
    QCOMPARE(d.busyIn(300, 200), int64_t(0));
  }

  void streamRolesRecordsOutsideSpansAndTheExtent() {
    // Rank 0 (GPU 0): stream 1 runs gemms and an NCCL kernel, stream 2 only NCCL, stream 3 a copy that
    // no span launched, before the host's first span.
    storage::Trace t = test::makeTrace(1, {{0, 1000, 5000}});
    for (int k = 1; k <= 3; ++k) test::addStream(t);  // tracks 1 to 3 of rank 0, GPU 0
    t.strings = {"span", "gemm", "ncclDevKernel_AllReduce", "memcpy HtoD"};
    t.linked.push_back({0, {.track = 0, .start = 1000, .end = 5000}});
    auto record = [&](int32_t track, int64_t a, int64_t b, uint32_t name, int64_t span,
                      storage::GpuActivityKind kind = storage::GpuActivityKind::Kernel) {
      storage::GpuActivityRecord g;
      g.track = track;
      g.start = a;
      g.end = b;
      g.name = name;
      g.span = span;
      g.kind = kind;
      g.device = 0;
      t.gpu.push_back(g);
    };
    record(1, 1000, 1100, 1, 0);
    record(1, 1200, 1300, 1, 0);
    record(1, 1300, 4000, 2, 0);  // the NCCL kernel takes most of the stream's time
    record(2, 2000, 3000, 2, 0);
    record(3, 100, 600, 3, storage::kNone, storage::GpuActivityKind::Memcpy);
    storage::finishTrace(t);
    const TimelineSummary s = summarizeTrace(t);
    QCOMPARE(s.role(0), StreamRole::None);
    QCOMPARE(s.role(1), StreamRole::ComputeNccl);  // by count: 2 gemms, 1 NCCL kernel
    QCOMPARE(s.role(2), StreamRole::Nccl);
    QCOMPARE(s.role(3), StreamRole::Copy);
    QCOMPARE(QString(streamRoleName(StreamRole::ComputeNccl)), QString("compute + NCCL"));
    QCOMPARE(s.tracks[3].unlinked, (std::vector<uint32_t>{4}));
    QVERIFY(s.tracks[1].unlinked.empty());
    QCOMPARE(s.extent, (TimeRange{100, 5000}));
    QCOMPARE(s.devices.size(), size_t(1));
    QCOMPARE(s.devices[0].rank, 0);
    QCOMPARE(s.devices[0].busyIn(0, 10'000), int64_t(500 + 100 + 2800));  // 100-600, 1000-1100, 1200-4000
  }
};

QTEST_APPLESS_MAIN(TimelineSummaryTest)
#include "timeline_summary_test.moc"
