#include "ui/span_fields.h"

#include <QTest>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class SpanFieldsTest : public QObject {
  Q_OBJECT

  static QStringList labels(const std::vector<SpanField>& fields) {
    QStringList out;
    for (const auto& f : fields) out << QString::fromStdString(f.label);
    return out;
  }

 private slots:
  void tooltipSummaryOfAComputation() {
    const auto t = test::makeTrace(1, {{0, 0, 2500, Category::ComputeExpert, storage::Phase::Forward, 3}});
    QCOMPARE(labels(spanSummary(t, {0, 0})),
             (QStringList{"name", "category", "phase", "stage", "micro-batch", "duration"}));
  }

  void tooltipSummaryOfACommunication() {
    const auto t = test::makeTrace(
        1, {{0, 0, 1'000'000, Category::CommTpAllreduce, storage::Phase::Backward, 1, 50'000'000}});
    const auto f = spanSummary(t, {0, 0});
    QCOMPARE(labels(f), (QStringList{"name", "category", "phase", "stage", "micro-batch", "duration", "bytes",
                                     "bandwidth"}));
    QCOMPARE(QString::fromStdString(f[6].value), QString("47.7 MiB"));
    QCOMPARE(QString::fromStdString(f[7].value), QString("50.00 GB/s"));
  }

  void tooltipOfAWaitNamesTheRankWaitedFor() {
    auto t = test::makeTrace(1, {{0, 0, 2500, Category::Wait, storage::Phase::Forward, 3}});
    t.spans[0].comm_index = {0};
    t.spans[0].comm_call = {{1, 7, 3}};
    const auto f = spanSummary(t, {0, 0});
    QCOMPARE(labels(f).last(), QString("waited for"));
    QCOMPARE(QString::fromStdString(f.back().value), QString("rank 3"));
  }

  void allFields() {
    const auto t = test::makeTrace(1, {{0, 100, 400}});
    const QStringList all = labels(spanFields(t, {0, 0}));
    for (const char* l : {"name", "category", "phase", "rank", "stage", "tp rank", "dp rank", "device",
                          "track", "step", "micro-batch", "layer", "expert", "start", "end", "duration"}) {
      QVERIFY2(all.contains(QString(l)), l);
    }
  }

  void units() {
    QCOMPARE(QString::fromStdString(formatBytes(512)), QString("512 B"));
    QCOMPARE(QString::fromStdString(formatBytes(3 << 20)), QString("3.0 MiB"));
    QCOMPARE(QString::fromStdString(formatBandwidth(1000, 1000)), QString("1.00 GB/s"));
    QCOMPARE(QString::fromStdString(formatBandwidth(1000, 100'000)), QString("10.0 MB/s"));
    QCOMPARE(QString::fromStdString(formatBandwidth(1000, 0)), QString("-"));
  }
};

QTEST_APPLESS_MAIN(SpanFieldsTest)
#include "span_fields_test.moc"
