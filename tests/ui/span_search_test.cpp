#include "ui/span_search.h"

#include <QTest>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;

class SpanSearchTest : public QObject {
  Q_OBJECT

  // Names: 0 "span", 1 "attention", 2 "tp_allreduce". Track 0: attention at 0 and 300, span at 100;
  // track 1: tp_allreduce at 200, attention at 300.
  static storage::Trace trace() {
    storage::Trace t = test::makeTrace(2, {});
    auto add = [&](int32_t track, int64_t start, uint32_t name) {
      storage::SpanRecord s;
      s.track = track;
      s.start = start;
      s.end = start + 50;
      s.name = name;
      storage::addSpan(t, s);
    };
    add(0, 0, 1);
    add(0, 100, 0);
    add(0, 300, 1);
    add(1, 200, 2);
    add(1, 300, 1);
    storage::finishTrace(t);
    return t;
  }

 private slots:
  void countsAndWalksInTimeOrder() {
    const auto t = trace();
    SpanSearch s;
    s.setQuery(t, "ATTENTION");
    QCOMPARE(s.count(), size_t(3));
    auto a = s.next(t, {});
    QCOMPARE(*a, (SpanRef{0, 0}));
    auto b = s.next(t, *a);
    QCOMPARE(*b, (SpanRef{0, 2}));  // at 300 on track 0
    auto c = s.next(t, *b);
    QCOMPARE(*c, (SpanRef{1, 1}));                     // at 300 on track 1
    QCOMPARE(*s.next(t, *c), (SpanRef{0, 0}));         // wraps around
    QCOMPARE(*s.next(t, *a, false), (SpanRef{1, 1}));  // backwards wraps too
    QCOMPARE(*s.next(t, *c, false), (SpanRef{0, 2}));
  }

  void substringAndNoMatch() {
    const auto t = trace();
    SpanSearch s;
    s.setQuery(t, "all");
    QCOMPARE(s.count(), size_t(1));
    QCOMPARE(*s.next(t, {}), (SpanRef{1, 0}));
    s.setQuery(t, "nothing");
    QVERIFY(s.empty());
    QVERIFY(!s.next(t, {}));
    s.setQuery(t, "");
    QCOMPARE(s.count(), size_t(0));
  }
};

QTEST_APPLESS_MAIN(SpanSearchTest)
#include "span_search_test.moc"
