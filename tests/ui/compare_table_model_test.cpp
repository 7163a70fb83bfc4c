// The compare table's model on hand-built run summaries, worked out here.
#include "ui/compare_table_model.h"

#include <QAbstractItemModelTester>
#include <QTest>

#include "ui/table_csv.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

namespace {

constexpr int64_t M = 1'000'000;

// pp: 40 ms steps, 20000 tok/s, half bubble, attention 17.5 ms and a 5 ms all-reduce per step.
// dp: 60 ms steps, 15000 tok/s, half bubble, attention 15 ms and a 15 ms all-to-all per step.
std::vector<storage::RunSummary> runs() {
  storage::RunSummary pp;
  pp.name = "pp";
  pp.step_ns = 40 * M;
  pp.tokens_per_s = 20000;
  pp.bubble_share = 0.5;
  pp.busy_per_step[Category::ComputeAttention] = 17'500'000;
  pp.busy_per_step[Category::CommTpAllreduce] = 5 * M;
  storage::RunSummary dp = pp;
  dp.name = "dp";
  dp.step_ns = 60 * M;
  dp.tokens_per_s = 15000;
  dp.busy_per_step[Category::ComputeAttention] = 15 * M;
  dp.busy_per_step[Category::CommTpAllreduce] = 0;
  dp.busy_per_step[Category::CommEpAlltoall] = 15 * M;
  return {pp, dp};
}

}  // namespace

class CompareTableModelTest : public QObject {
  Q_OBJECT

 private slots:
  void rowsColumnsAndCells() {
    CompareTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRuns(runs());
    // step time, tokens/s, bubble share, its theory, attention, all-reduce, all-to-all; the figure and
    // two runs.
    QCOMPARE(model.rowCount(), 7);
    QCOMPARE(model.columnCount(), 3);
    QCOMPARE(model.headerData(1, Qt::Horizontal).toString(), QString("pp (baseline)"));
    QCOMPARE(model.headerData(2, Qt::Horizontal).toString(), QString("dp"));
    QCOMPARE(model.index(0, 0).data().toString(), QString("step time (median)"));
    QCOMPARE(model.index(0, 1).data().toString(), QString("40.000 ms"));
    // 60 / 40 = 1.5.
    QCOMPARE(model.index(0, 2).data().toString(), QString::fromUtf8("60.000 ms  ×1.50"));
    QCOMPARE(model.index(0, 2).data(CompareTableModel::RatioRole).toDouble(), 1.5);
    // 15000 / 20000 = 0.75.
    QCOMPARE(model.index(1, 2).data().toString(), QString::fromUtf8("15000 tok/s  ×0.75"));
    QCOMPARE(model.index(2, 2).data().toString(), QString::fromUtf8("50.0%  ×1.00"));
    QCOMPARE(model.index(3, 0).data().toString(), QString("bubble share, theoretical"));
    // 15 / 17.5 = 0.857...
    QCOMPARE(model.index(4, 2).data().toString(), QString::fromUtf8("15.000 ms  ×0.86"));
    // The all-reduce falls to 0 (x0.00); the all-to-all has no baseline value (no ratio).
    QCOMPARE(model.index(5, 2).data().toString(), QString::fromUtf8("0.000 ms  ×0.00"));
    QCOMPARE(model.index(6, 2).data().toString(), QString::fromUtf8("15.000 ms  –"));
    QCOMPARE(formatCompareValue(storage::CompareUnit::Bytes, 3 << 20), QString("3.00 MiB"));
    QCOMPARE(formatCompareValue(storage::CompareUnit::Bytes, 6.5 * (1 << 30)), QString("6.50 GiB"));
  }

  // The peak device memory row where one run counted it (CUDA) and the other did not (CPU): the
  // other's cell is a dash, without a ratio.
  void peakDeviceMemoryWhereOneRunCountedIt() {
    std::vector<storage::RunSummary> r = runs();
    r[1].peak_device_memory_bytes = int64_t{18} << 30;
    CompareTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRuns(r, 1);
    QCOMPARE(model.rowCount(), 8);
    QCOMPARE(model.index(4, 0).data().toString(), QString("peak device memory"));
    QCOMPARE(model.index(4, 2).data().toString(), QString("18.00 GiB"));
    QCOMPARE(model.index(4, 1).data().toString(), QString::fromUtf8("–"));
    QVERIFY(!model.index(4, 1).data(CompareTableModel::LargestRole).toBool());
  }

  void largestDifferencesAreHighlighted() {
    CompareTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRuns(runs());
    // Weights: step time |1.5 - 1| = 0.5; all-to-all 15 / 40 = 0.375; tokens/s |0.75 - 1| = 0.25;
    // all-reduce 5 / 40 = 0.125 and attention 2.5 / 40 = 0.0625 are not among the top 3.
    for (int row : {0, 6, 1}) {
      QVERIFY(model.index(row, 2).data(CompareTableModel::LargestRole).toBool());
      QVERIFY(model.index(row, 2).data(Qt::BackgroundRole).isValid());
      QVERIFY(model.index(row, 2).data(Qt::FontRole).value<QFont>().bold());
    }
    for (int row : {2, 3, 4, 5}) QVERIFY(!model.index(row, 2).data(CompareTableModel::LargestRole).toBool());
    QVERIFY(!model.index(0, 1).data(CompareTableModel::LargestRole).toBool());
  }

  void anotherBaseline() {
    CompareTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRuns(runs());
    model.setBaseline(1);
    QCOMPARE(model.headerData(2, Qt::Horizontal).toString(), QString("dp (baseline)"));
    // 40 / 60 = 0.67; 20000 / 15000 = 1.33.
    QCOMPARE(model.index(0, 1).data().toString(), QString::fromUtf8("40.000 ms  ×0.67"));
    QCOMPARE(model.index(1, 1).data().toString(), QString::fromUtf8("20000 tok/s  ×1.33"));
    QCOMPARE(model.index(0, 2).data().toString(), QString("60.000 ms"));
  }

  void csv() {
    CompareTableModel model;
    model.setRuns(runs());
    const QStringList lines = tableToCsv(model).split('\n');
    QCOMPARE(lines[0], QString("figure,pp (baseline),dp"));
    QCOMPARE(lines[1], QString::fromUtf8("step time (median),40.000 ms,60.000 ms  ×1.50"));
    QCOMPARE(lines.size(), 1 + 7 + 1);  // header, rows, and the empty string after the last newline
  }
};

QTEST_GUILESS_MAIN(CompareTableModelTest)
#include "compare_table_model_test.moc"
