#include "ui/zoom_stack.h"

#include <QTest>

using moescope::ui::TimeRange;
using moescope::ui::ZoomStack;

class ZoomStackTest : public QObject {
  Q_OBJECT

 private slots:
  void undoGoesBackInOrder() {
    ZoomStack s;
    QVERIFY(s.empty());
    QVERIFY(!s.pop());
    s.push({0, 1000});
    s.push({100, 200});
    s.push({120, 130});
    QCOMPARE(s.size(), size_t(3));
    QCOMPARE(*s.pop(), (TimeRange{120, 130}));
    QCOMPARE(*s.pop(), (TimeRange{100, 200}));
    QCOMPARE(*s.top(), (TimeRange{0, 1000}));
    QCOMPARE(*s.pop(), (TimeRange{0, 1000}));
    QVERIFY(!s.pop());
  }

  void theSameRangeTwiceIsKeptOnce() {
    ZoomStack s;
    s.push({0, 1000});
    s.push({0, 1000});
    QCOMPARE(s.size(), size_t(1));
  }

  void theOldestGoFirstWhenFull() {
    ZoomStack s;
    for (int i = 0; i < int(ZoomStack::kMaxDepth) + 5; ++i) s.push({i, i + 10});
    QCOMPARE(s.size(), ZoomStack::kMaxDepth);
    std::optional<TimeRange> last;
    while (auto r = s.pop()) last = r;
    QCOMPARE(*last, (TimeRange{5, 15}));
  }
};

QTEST_APPLESS_MAIN(ZoomStackTest)
#include "zoom_stack_test.moc"
