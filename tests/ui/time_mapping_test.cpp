#include "ui/time_mapping.h"

#include <QTest>

using moescope::ui::TimeMapping;
using moescope::ui::TimeRange;

Q_DECLARE_METATYPE(TimeRange)

class TimeMappingTest : public QObject {
  Q_OBJECT

 private slots:
  void toXAndBack_data() {
    QTest::addColumn<qint64>("start");
    QTest::addColumn<qint64>("end");
    QTest::addColumn<double>("width");
    QTest::addColumn<qint64>("t");
    QTest::addColumn<double>("x");
    QTest::newRow("origin") << qint64(0) << qint64(1000) << 100.0 << qint64(0) << 0.0;
    QTest::newRow("end") << qint64(0) << qint64(1000) << 100.0 << qint64(1000) << 100.0;
    QTest::newRow("middle") << qint64(500) << qint64(1500) << 200.0 << qint64(1000) << 100.0;
    QTest::newRow("left of view") << qint64(500) << qint64(1500) << 200.0 << qint64(0) << -100.0;
    QTest::newRow("seconds on a late clock") << qint64(5'000'000'000'000) << qint64(5'002'000'000'000)
                                             << 2000.0 << qint64(5'001'000'000'000) << 1000.0;
  }
  void toXAndBack() {
    QFETCH(qint64, start);
    QFETCH(qint64, end);
    QFETCH(double, width);
    QFETCH(qint64, t);
    QFETCH(double, x);
    const TimeMapping m{{start, end}, width};
    QCOMPARE(m.toX(t), x);
    QCOMPARE(m.toTime(x), t);
  }

  void zoomKeepsTimeUnderCursor_data() {
    QTest::addColumn<double>("x");
    QTest::addColumn<double>("factor");
    QTest::addColumn<TimeRange>("expected");
    QTest::newRow("in at left edge") << 0.0 << 2.0 << TimeRange{0, 500};
    QTest::newRow("in at middle") << 50.0 << 2.0 << TimeRange{250, 750};
    QTest::newRow("in at right edge") << 100.0 << 4.0 << TimeRange{750, 1000};
    QTest::newRow("out at middle") << 50.0 << 0.5 << TimeRange{-500, 1500};
    QTest::newRow("in beyond the limit") << 50.0 << 1e9 << TimeRange{495, 505};
  }
  void zoomKeepsTimeUnderCursor() {
    QFETCH(double, x);
    QFETCH(double, factor);
    QFETCH(TimeRange, expected);
    const TimeMapping m{{0, 1000}, 100};
    const TimeMapping z = m.zoomedAt(x, factor);
    QCOMPARE(z.range, expected);
    QCOMPARE(z.width, m.width);
    QCOMPARE(z.toTime(x), m.toTime(x));
  }

  void pan_data() {
    QTest::addColumn<double>("dx");
    QTest::addColumn<TimeRange>("expected");
    QTest::newRow("right shows later") << 10.0 << TimeRange{100, 1100};
    QTest::newRow("left shows earlier") << -25.0 << TimeRange{-250, 750};
    QTest::newRow("none") << 0.0 << TimeRange{0, 1000};
  }
  void pan() {
    QFETCH(double, dx);
    QFETCH(TimeRange, expected);
    QCOMPARE((TimeMapping{{0, 1000}, 100}.pannedBy(dx).range), expected);
  }

  void showing_data() {
    QTest::addColumn<TimeRange>("asked");
    QTest::addColumn<TimeRange>("expected");
    QTest::newRow("a range") << TimeRange{200, 400} << TimeRange{200, 400};
    QTest::newRow("reversed") << TimeRange{400, 200} << TimeRange{200, 400};
    QTest::newRow("too narrow grows around its middle") << TimeRange{100, 102} << TimeRange{96, 106};
  }
  void showing() {
    QFETCH(TimeRange, asked);
    QFETCH(TimeRange, expected);
    QCOMPARE((TimeMapping{{0, 1000}, 100}.showing(asked).range), expected);
  }

  void clamp_data() {
    QTest::addColumn<TimeRange>("view");
    QTest::addColumn<TimeRange>("expected");
    QTest::newRow("inside") << TimeRange{100, 200} << TimeRange{100, 200};
    QTest::newRow("before") << TimeRange{-50, 50} << TimeRange{0, 100};
    QTest::newRow("after") << TimeRange{950, 1050} << TimeRange{900, 1000};
    QTest::newRow("wider") << TimeRange{-10, 2000} << TimeRange{0, 1000};
  }
  void clamp() {
    QFETCH(TimeRange, view);
    QFETCH(TimeRange, expected);
    QCOMPARE((TimeMapping{view, 100}.clampedTo({0, 1000}).range), expected);
  }
};

QTEST_APPLESS_MAIN(TimeMappingTest)
#include "time_mapping_test.moc"
