// The Selection panel's table: one row per category, name or kernel of an area's summary, with its
// numbers as text and as values to sort by.
#include "ui/range_summary_model.h"

#include <QAbstractItemModelTester>
#include <QTest>

using namespace moescope;
using namespace moescope::ui;

class RangeSummaryModelTest : public QObject {
  Q_OBJECT

  static storage::RangeSummary summary() {
    storage::RangeSummary s;
    s.hostCategories = {{"compute.expert", 2, 3'000'000, 2'000'000, 1'500'000.0, 0.75},
                        {"compute.attention", 4, 1'000'000, 400'000, 250'000.0, 0.25}};
    s.kernels = {{"gemm", 10, 50'000, 9000, 5000.0, 1.0}};
    return s;
  }

 private slots:
  void rowsOfTheChosenTable() {
    RangeSummaryModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setSummary(summary());
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(model.columnCount(), int(RangeSummaryModel::ColumnCount));
    QCOMPARE(model.index(0, RangeSummaryModel::Label).data().toString(), QString("compute.expert"));
    QCOMPARE(model.index(0, RangeSummaryModel::Total).data().toString(), QString("3.00 ms"));
    QCOMPARE(model.index(0, RangeSummaryModel::Mean).data().toString(), QString("1.50 ms"));
    QCOMPARE(model.index(0, RangeSummaryModel::Max).data().toString(), QString("2.00 ms"));
    QCOMPARE(model.index(0, RangeSummaryModel::Share).data().toString(), QString("75.0%"));
    QCOMPARE(model.index(1, RangeSummaryModel::Count).data(RangeSummaryModel::ValueRole).toLongLong(), 4);
    QCOMPARE(model.headerData(0, Qt::Horizontal).toString(), QString("category"));
    model.setTable(RangeTable::Kernels);
    QCOMPARE(model.rowCount(), 1);
    QCOMPARE(model.headerData(0, Qt::Horizontal).toString(), QString("kernel"));
    QCOMPARE(model.index(0, RangeSummaryModel::Total).data(RangeSummaryModel::ValueRole).toLongLong(),
             50'000);
    model.setTable(RangeTable::Names);
    QCOMPARE(model.rowCount(), 0);
  }
};

QTEST_GUILESS_MAIN(RangeSummaryModelTest)
#include "range_summary_model_test.moc"
