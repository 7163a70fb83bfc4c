#include "ui/span_details_model.h"

#include <QAbstractItemModelTester>
#include <QTest>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class SpanDetailsModelTest : public QObject {
  Q_OBJECT

  static QString valueOf(const SpanDetailsModel& m, const QString& label) {
    for (int r = 0; r < m.rowCount(); ++r) {
      if (m.index(r, 0).data().toString() == label) return m.index(r, 1).data().toString();
    }
    return QStringLiteral("<missing>");
  }

 private slots:
  void showsEveryFieldOfTheSpan() {
    auto trace = test::makeTrace(
        2, {{0, 1'000, 2'000},
            {1, 0, 4'000'000, Category::CommTpAllreduce, storage::Phase::Backward, 5, 8'000'000}});
    SpanDetailsModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(model.rowCount(), 0);
    model.setSpan(&trace, SpanRef{1, 0});
    QCOMPARE(model.columnCount(), 2);
    QCOMPARE(valueOf(model, "name"), QString("span"));
    QCOMPARE(valueOf(model, "category"), QString("comm.tp_allreduce"));
    QCOMPARE(valueOf(model, "phase"), QString("backward"));
    QCOMPARE(valueOf(model, "stage"), QString("1"));
    QCOMPARE(valueOf(model, "micro-batch"), QString("5"));
    QCOMPARE(valueOf(model, "layer"), QString("-"));
    QCOMPARE(valueOf(model, "duration"), QString("4.00 ms"));
    QCOMPARE(valueOf(model, "bytes"), QString("7.6 MiB"));
    QCOMPARE(valueOf(model, "bandwidth"), QString("2.00 GB/s"));
    QCOMPARE(model.headerData(1, Qt::Horizontal).toString(), QString("value"));

    model.setSpan(&trace, SpanRef{0, 0});
    QCOMPARE(valueOf(model, "bytes"), QString("<missing>"));  // computation carries no bytes
    model.setSpan(&trace, std::nullopt);
    QCOMPARE(model.rowCount(), 0);
    model.setSpan(&trace, SpanRef{0, 99});  // out of range: cleared, not a crash
    QCOMPARE(model.rowCount(), 0);
  }
};

QTEST_GUILESS_MAIN(SpanDetailsModelTest)
#include "span_details_model_test.moc"
