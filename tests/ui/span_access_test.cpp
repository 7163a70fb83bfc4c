#include "ui/span_access.h"

#include <QTest>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;

class SpanAccessTest : public QObject {
  Q_OBJECT

 private slots:
  void firstSpanEndingAfterLooksBackForNestedSpans() {
    // A long span [0, 1000) holding short ones; spans [2000, 2100) and [3000, 3100) after it.
    const auto t =
        test::makeTrace(1, {{0, 0, 1000}, {0, 100, 200}, {0, 300, 400}, {0, 2000, 2100}, {0, 3000, 3100}});
    const auto& c = t.spans[0];
    QCOMPARE(c.maxDuration, int64_t(1000));
    QCOMPARE(firstSpanEndingAfter(c, 500), size_t(0));  // the long span still covers 500
    QVERIFY(firstSpanEndingAfter(c, 2500) <= size_t(3));
    QCOMPARE(firstSpanStartingAt(c, 2000, 0, c.size()), size_t(3));
    QCOMPARE(firstSpanStartingAt(c, 2001, 0, c.size()), size_t(4));
    QCOMPARE(latestEnd(c), int64_t(3100));
  }

  void gallopFindsWhatABinarySearchFinds() {
    storage::Trace t = test::makeTrace(1, {});
    for (int i = 0; i < 5000; ++i) {
      storage::SpanRecord s;
      s.start = i * 10;
      s.end = s.start + 5;
      storage::addSpan(t, s);
    }
    storage::finishTrace(t);
    const auto& c = t.spans[0];
    for (size_t from : {size_t(0), size_t(17), size_t(4000)}) {
      for (int64_t target :
           {int64_t(0), int64_t(175), int64_t(176), int64_t(40'000), int64_t(49'995), int64_t(90'000)}) {
        QCOMPARE(gallopToStart(c, target, from, c.size()),
                 std::max(from, firstSpanStartingAt(c, target, 0, c.size())));
      }
    }
  }

  void extents() {
    auto t = test::makeTrace(2, {{0, 500, 900}, {1, 100, 300}, {1, 200, 1200}});
    QCOMPARE(spanExtent(t), (TimeRange{100, 1200}));
    QCOMPARE(timelineExtent(t), (TimeRange{100, 1200}));
    auto empty = test::makeTrace(1, {});
    empty.run.start_ns = 10;
    empty.run.end_ns = 50;
    QCOMPARE(timelineExtent(empty), (TimeRange{10, 50}));
  }
};

QTEST_APPLESS_MAIN(SpanAccessTest)
#include "span_access_test.moc"
