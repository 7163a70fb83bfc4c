// The breakdown's models on a hand-built breakdown.
#include "ui/breakdown_model.h"

#include <QAbstractItemModelTester>
#include <QTest>

#include "ui/table_csv.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

namespace {

// Stage 0: ranks 0 and 1 over a 100 ns extent; stage 1: rank 2. The stage rows are the means.
storage::Breakdown breakdown() {
  storage::Breakdown b;
  b.steps = {3};
  storage::BreakdownRow r0{0, 0, 1, {}, 50, 100};
  r0.busy[Category::ComputeAttention] = 40;
  r0.busy[Category::CommTpAllreduce] = 20;
  storage::BreakdownRow r1{0, 1, 1, {}, 40, 100};
  r1.busy[Category::ComputeAttention] = 60;
  storage::BreakdownRow r2{1, 2, 1, {}, 60, 100};
  r2.busy[Category::ComputeExpert] = 40;
  r2.busy[Category::Wait] = 60;
  storage::BreakdownRow s0{0, storage::kNone, 2, {}, 45, 100};
  s0.busy[Category::ComputeAttention] = 50;
  s0.busy[Category::CommTpAllreduce] = 10;
  storage::BreakdownRow s1 = r2;
  s1.rank = storage::kNone;
  b.ranks = {r0, r1, r2};
  b.stages = {s0, s1};
  b.communication = {{Category::CommTpAllreduce, 20, 1, 400, 20.0}};
  return b;
}

}  // namespace

class BreakdownModelTest : public QObject {
  Q_OBJECT

 private slots:
  void eachStageThenItsRanks() {
    BreakdownModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setBreakdown(breakdown());
    QCOMPARE(model.rowCount(), 5);
    QStringList labels;
    for (int r = 0; r < model.rowCount(); ++r) labels << model.index(r, 0).data().toString().trimmed();
    QCOMPARE(labels, QStringList({"stage 0", "rank 0", "rank 1", "stage 1", "rank 2"}));
    // Columns: the label, attention, expert, all-reduce (waits are bubble time), bubble, extent.
    QCOMPARE(model.columnCount(), 6);
    QCOMPARE(model.headerData(1, Qt::Horizontal).toString(), QString("compute.attention ms"));
    QCOMPARE(model.headerData(2, Qt::Horizontal).toString(), QString("compute.expert ms"));
    QCOMPARE(model.headerData(3, Qt::Horizontal).toString(), QString("comm.tp_allreduce ms"));
    QCOMPARE(model.headerData(4, Qt::Horizontal).toString(), QString("bubble ms"));
    // 50 ns of attention: 0.00005 ms.
    QCOMPARE(model.index(0, 1).data(BreakdownModel::ValueRole).toDouble(), 50 / 1e6);
    QCOMPARE(model.index(0, 4).data(BreakdownModel::ValueRole).toDouble(), 45 / 1e6);
  }

  void percentOfTheExtent() {
    BreakdownModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setBreakdown(breakdown());
    model.setUnit(BreakdownUnit::Percent);
    // rank 0: attention 40 of 100, all-reduce 20, bubble 50.
    QCOMPARE(model.index(1, 1).data().toString(), QString("40.0%"));
    QCOMPARE(model.index(1, 3).data().toString(), QString("20.0%"));
    QCOMPARE(model.index(1, 4).data().toString(), QString("50.0%"));
    QCOMPARE(model.index(1, 5).data().toString(), QString("100.0%"));
    QCOMPARE(model.headerData(4, Qt::Horizontal).toString(), QString("bubble %"));
  }

  void communicationTable() {
    CommTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setCommunication(breakdown().communication);
    QCOMPARE(model.rowCount(), 1);
    QCOMPARE(model.columnCount(), int(CommTableModel::ColumnCount));
    QCOMPARE(model.index(0, CommTableModel::Kind).data().toString(), QString("comm.tp_allreduce"));
    QCOMPARE(model.index(0, CommTableModel::Count).data().toString(), QString("1"));
    QCOMPARE(model.index(0, CommTableModel::Time).data().toString(), QString("0.000 ms"));
    QCOMPARE(model.index(0, CommTableModel::Bandwidth).data().toString(), QString("20.00 GB/s"));
    QCOMPARE(model.index(0, CommTableModel::Bytes).data(Qt::UserRole).toLongLong(), 400);
    QCOMPARE(tableToCsv(model).section('\n', 0, 0),
             QString("kind,count,bytes,time (all ranks),achieved bandwidth"));
  }
};

QTEST_GUILESS_MAIN(BreakdownModelTest)
#include "breakdown_model_test.moc"
