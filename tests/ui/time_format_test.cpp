#include "ui/time_format.h"

#include <QTest>

using namespace moescope::ui;

class TimeFormatTest : public QObject {
  Q_OBJECT

 private slots:
  void durations_data() {
    QTest::addColumn<qint64>("ns");
    QTest::addColumn<QString>("text");
    QTest::newRow("ns") << qint64(850) << QString("850 ns");
    QTest::newRow("µs") << qint64(12'400) << QString::fromUtf8("12.4 µs");
    QTest::newRow("ms") << qint64(3'250'000) << QString("3.25 ms");
    QTest::newRow("s") << qint64(1'500'000'000) << QString("1.50 s");
    QTest::newRow("hundreds of ms") << qint64(250'000'000) << QString("250 ms");
  }
  void durations() {
    QFETCH(qint64, ns);
    QFETCH(QString, text);
    QCOMPARE(QString::fromStdString(formatDuration(ns)), text);
  }

  void niceSteps_data() {
    QTest::addColumn<double>("min");
    QTest::addColumn<qint64>("step");
    QTest::newRow("1") << 0.5 << qint64(1);
    QTest::newRow("2") << 1.5 << qint64(2);
    QTest::newRow("5") << 4.0 << qint64(5);
    QTest::newRow("10") << 6.0 << qint64(10);
    QTest::newRow("200 µs") << 130'000.0 << qint64(200'000);
  }
  void niceSteps() {
    QFETCH(double, min);
    QFETCH(qint64, step);
    QCOMPARE(niceStep(min), step);
  }

  void ticksShareAUnit() {
    // 0 .. 2 ms over 1000 px, labels at least 100 px apart: a major tick every 200 µs, shown in ms.
    const TimeMapping m{{1'000'000, 3'000'000}, 1000};
    int64_t step = 0;
    const auto ticks = rulerTicks(m, 1'000'000, 100, &step);
    QCOMPARE(step, int64_t(200'000));
    QVERIFY(!ticks.empty());
    QCOMPARE(ticks.front().x, 0.0);
    QVERIFY(ticks.front().major);
    int majors = 0;
    for (const auto& t : ticks) majors += t.major ? 1 : 0;
    QCOMPARE(majors, 11);
    QCOMPARE(ticks.size(), size_t(21));  // a 2 splits in two
    QCOMPARE(QString::fromStdString(formatTick(1'200'000, step, 2'000'000)), QString("1.2 ms"));
    QCOMPARE(QString::fromStdString(formatTick(0, step, 2'000'000)), QString("0.0 ms"));
  }

  // A duration beyond the run file's time limit (2^62 ns) is unreadable, not an overflow.
  void durationsBeyondTheTimeLimitAreRefused() {
    QCOMPARE(parseDuration("4000000000000000000"), std::optional<int64_t>(4000000000000000000));
    QVERIFY(!parseDuration("9223372036854775807"));
    QVERIFY(!parseDuration("-5000000000s"));
    QVERIFY(!parseTimeRange("0:9223372036854775807"));
    QVERIFY(parseTimeRange("0:146s"));
  }

  // `--range` takes units (issue 17's item 8: "0.21s:0.25s", "210ms:250ms"); a bare number is ns.
  void rangesTakeUnits() {
    const TimeRange expected{210'000'000, 250'000'000};
    QCOMPARE(parseTimeRange("0.21s:0.25s"), std::optional<TimeRange>(expected));
    QCOMPARE(parseTimeRange("210ms:250ms"), std::optional<TimeRange>(expected));
    QCOMPARE(parseTimeRange("210000us:0.25s"), std::optional<TimeRange>(expected));
    QCOMPARE(parseTimeRange("5:10"), std::optional<TimeRange>(TimeRange{5, 10}));
    QVERIFY(!parseTimeRange("250ms:210ms"));  // the end before the start
    QVERIFY(!parseTimeRange("210ms"));
    QVERIFY(!parseTimeRange("1parsec:2s"));
  }
};

QTEST_APPLESS_MAIN(TimeFormatTest)
#include "time_format_test.moc"
