#include "ui/hit_test.h"

#include <QTest>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

Q_DECLARE_METATYPE(std::optional<Hit>)

namespace {

const LayoutMetrics kMetrics{
    .rulerHeight = 28, .groupHeight = 22, .trackHeight = 24, .boxMargin = 3, .labelWidth = 210};

// Rows: ruler 0-28, rank 0 header 28-50, track 0 50-74 (boxes 53-71), rank 1
// header 74-96, track 1 96-120 (boxes 99-117). One pixel is one microsecond.
storage::Trace twoRanks() {
  storage::Trace trace = test::makeTrace(2, {{0, 0, 100'000, Category::ComputeAttention},
                                             {0, 200'000, 300'000, Category::CommTpAllreduce},
                                             {1, 100'000, 250'000, Category::ComputeExpert}});
  // Dense spans on track 1 from 300 µs: 100 spans of 200 ns every 500 ns, folded at this zoom.
  for (int i = 0; i < 100; ++i) {
    storage::SpanRecord s;
    s.track = 1;
    s.start = 300'000 + i * 500;
    s.end = s.start + 200;
    storage::addSpan(trace, s);
  }
  storage::finishTrace(trace);
  return trace;
}

}  // namespace

class HitTestTest : public QObject {
  Q_OBJECT

 private slots:
  void spanUnderPixel_data() {
    QTest::addColumn<double>("x");
    QTest::addColumn<int>("y");
    QTest::addColumn<std::optional<Hit>>("expected");
    QTest::newRow("first span") << 50.0 << 62 << std::optional<Hit>(Hit{{0, 0}, 1});
    QTest::newRow("first span, left edge") << 0.0 << 62 << std::optional<Hit>(Hit{{0, 0}, 1});
    QTest::newRow("second span") << 250.0 << 62 << std::optional<Hit>(Hit{{0, 1}, 1});
    QTest::newRow("gap between spans") << 150.0 << 62 << std::optional<Hit>();
    QTest::newRow("row margin above the boxes") << 50.0 << 51 << std::optional<Hit>();
    QTest::newRow("other rank") << 150.0 << 108 << std::optional<Hit>(Hit{{1, 0}, 1});
    QTest::newRow("rank header") << 150.0 << 80 << std::optional<Hit>();
    QTest::newRow("ruler") << 150.0 << 10 << std::optional<Hit>();
    QTest::newRow("below every row") << 150.0 << 500 << std::optional<Hit>();
    // 300 µs + 10.1 µs is nearest to the 21st dense span ([310.0, 310.2) µs); the pixel [310, 311) µs
    // holds two spans (one every 500 ns).
    QTest::newRow("among folded spans") << 310.1 << 108 << std::optional<Hit>(Hit{{1, 21}, 2});
  }
  void spanUnderPixel() {
    QFETCH(double, x);
    QFETCH(int, y);
    QFETCH(std::optional<Hit>, expected);
    const auto trace = twoRanks();
    const TimelineSummary summary = summarizeTrace(trace);
    const auto layout = layoutTimeline(trace, summary, {}, kMetrics);
    const DrawList list = buildDrawList(trace, summary, layout, TimeMapping{{0, 400'000}, 400});
    const auto hit = hitTest(trace, summary, layout, list, x, y);
    QCOMPARE(hit.has_value(), expected.has_value());
    if (hit) {
      QCOMPARE(hit->span, expected->span);
      QCOMPARE(hit->folded, expected->folded);
    }
  }

  void thinSpansGetAMargin() {
    const auto trace = test::makeTrace(1, {{0, 100'000, 100'500}});  // half a pixel
    const TimelineSummary summary = summarizeTrace(trace);
    const auto layout = layoutTimeline(trace, summary, {}, kMetrics);
    const DrawList list = buildDrawList(trace, summary, layout, TimeMapping{{0, 400'000}, 400});
    QVERIFY(hitTest(trace, summary, layout, list, 101.5, 62).has_value());
    QVERIFY(!hitTest(trace, summary, layout, list, 103.5, 62).has_value());
  }

  void headersForCollapsing() {
    const auto trace = twoRanks();
    const auto layout = layoutTimeline(trace, summarizeTrace(trace), {}, kMetrics);
    QCOMPARE(groupAt(layout, 30), std::optional<int32_t>(0));
    QCOMPARE(groupAt(layout, 80), std::optional<int32_t>(1));
    QCOMPARE(groupAt(layout, 62), std::optional<int32_t>());
  }
};

QTEST_APPLESS_MAIN(HitTestTest)
#include "hit_test_test.moc"
