// The MoE view's models on a hand-built routing table.
#include "ui/moe_model.h"

#include <QAbstractItemModelTester>
#include <QTest>

using namespace moescope;
using namespace moescope::ui;

namespace {

// Two steps, one micro-batch each... of two layers (1, 3), 4 experts, 40 assignments per group.
// Step 0: layer 1 balanced (10 each), layer 3 all on expert 2; step 1: layer 1 twice as many on
// expert 0 (16, 8, 8, 8), layer 3 drops 8 (kept 8 each on 0..3 = 32).
storage::Trace routed() {
  storage::Trace t;
  t.routing = {{0, 0, 1, 0, 40, 0, {10, 10, 10, 10}},
               {0, 0, 3, 0, 40, 0, {0, 0, 40, 0}},
               {1, 0, 1, 0, 40, 0, {16, 8, 8, 8}},
               {1, 0, 3, 0, 40, 8, {8, 8, 8, 8}}};
  return t;
}

}  // namespace

class MoeModelTest : public QObject {
  Q_OBJECT

 private slots:
  void heatmapCellsAreKeptOverTheBalancedShare() {
    MoeLoadModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setGrid(storage::moeLoadGrid(routed(), false));
    QCOMPARE(model.rowCount(), 8);
    QCOMPARE(model.columnCount(), 2);
    QCOMPARE(model.rowKey(6), std::make_pair(int32_t{3}, int32_t{2}));
    QCOMPARE(model.rowOf(3, 2), std::optional<int>(6));
    QCOMPARE(model.rowOf(2, 0), std::optional<int>());
    // Balanced share 40 / 4 = 10.
    QCOMPARE(model.data(model.index(0, 0), MoeLoadModel::RelativeRole).toDouble(), 1.0);
    QCOMPARE(model.data(model.index(6, 0), MoeLoadModel::RelativeRole).toDouble(), 4.0);
    QCOMPARE(model.data(model.index(0, 1), MoeLoadModel::RelativeRole).toDouble(), 1.6);
    QCOMPARE(model.data(model.index(4, 1), MoeLoadModel::RelativeRole).toDouble(), 0.8);
    QCOMPARE(model.data(model.index(6, 0), MoeLoadModel::KeptRole).toLongLong(), 40);
    QCOMPARE(model.data(model.index(6, 0)).toString(), QStringLiteral("4.00"));
    QCOMPARE(model.maxRelative(), 4.0);
    QCOMPARE(model.hottestExpert(3), 2);
    QCOMPARE(model.hottestExpert(1), 0);
    QCOMPARE(model.headerData(6, Qt::Vertical).toString(), QStringLiteral("L3 e2"));
    QCOMPARE(model.headerData(1, Qt::Horizontal).toString(), QStringLiteral("1"));
    const QString tip = model.data(model.index(4, 1), Qt::ToolTipRole).toString();
    QVERIFY2(tip.contains(QStringLiteral("layer 3 · expert 0 · step 1")), qPrintable(tip));
    QVERIFY2(tip.contains(QStringLiteral("8 tokens kept, 0.80 × the balanced share (10.0)")),
             qPrintable(tip));
    QVERIFY2(tip.contains(QStringLiteral("8 of 40 assignments dropped (20.0%)")), qPrintable(tip));
    QVERIFY(!model.perMicrobatch());
  }

  void microbatchColumns() {
    MoeLoadModel model;
    storage::Trace t = routed();
    t.routing.push_back({1, 1, 1, 0, 40, 0, {40, 0, 0, 0}});
    storage::finishTrace(t);
    model.setGrid(storage::moeLoadGrid(t, true));
    QCOMPARE(model.columnCount(), 3);
    QVERIFY(model.perMicrobatch());
    QCOMPARE(model.headerData(2, Qt::Horizontal).toString(), QStringLiteral("1.1"));
    QCOMPARE(model.data(model.index(0, 2), MoeLoadModel::RelativeRole).toDouble(), 4.0);
    QCOMPARE(moeColumnText(model.grid().columns[2]), QStringLiteral("step 1 · micro-batch 1"));
  }

  void layerTable() {
    MoeLayerModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    storage::MoeStats s = storage::analyzeMoe(routed());
    model.setStats(s);
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(model.data(model.index(0, MoeLayerModel::Layer)).toString(), QStringLiteral("1"));
    // Layer 1: groups 1.0 and 16 / 10 = 1.6; layer 3: 4.0 and 1.0.
    QCOMPARE(model.data(model.index(0, MoeLayerModel::Imbalance), MoeLayerModel::ValueRole).toDouble(), 1.3);
    QCOMPARE(model.data(model.index(1, MoeLayerModel::Worst), MoeLayerModel::ValueRole).toDouble(), 4.0);
    QCOMPARE(model.data(model.index(1, MoeLayerModel::Dropped)).toString(), QStringLiteral("10.0%"));
    QCOMPARE(model.data(model.index(1, MoeLayerModel::HotExpert)).toString(), QStringLiteral("2 (67%)"));
    QCOMPARE(model.data(model.index(1, MoeLayerModel::WaitedFor)).toString(), QStringLiteral("–"));
    QCOMPARE(model.headerData(MoeLayerModel::Cv, Qt::Horizontal).toString(), QStringLiteral("CV"));
  }
};

QTEST_GUILESS_MAIN(MoeModelTest)
#include "moe_model_test.moc"
