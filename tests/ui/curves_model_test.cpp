// The run's curves as a model: a row per step, a column per curve.
#include "ui/curves_model.h"

#include <QAbstractItemModelTester>
#include <QTest>

using namespace moescope;
using namespace moescope::ui;

class CurvesModelTest : public QObject {
  Q_OBJECT

 private slots:
  void aRowPerStepAColumnPerCurve() {
    storage::Trace t;
    t.run.name = "r";
    t.steps = {{0, 5.5, 5.25, 0.25, 512, 100.0, 5120.0, 0, 1}, {1, 4.5, 4.3, 0.2, 512, 50.0, 10240.0, 1, 2}};
    CurvesModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setCurves(runCurves(t));
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(model.columnCount(), 6);
    QCOMPARE(model.curves().name, QStringLiteral("r"));
    QCOMPARE(model.headerData(0, Qt::Horizontal).toString(), QStringLiteral("step"));
    QCOMPARE(model.headerData(3, Qt::Horizontal).toString(), QStringLiteral("aux loss"));
    QCOMPARE(model.data(model.index(1, 0)).toString(), QStringLiteral("1"));
    QCOMPARE(model.data(model.index(1, 1), CurvesModel::ValueRole).toDouble(), 4.5);
    QCOMPARE(model.data(model.index(1, 2), CurvesModel::ValueRole).toDouble(), 4.3);
    QCOMPARE(model.data(model.index(1, 3), CurvesModel::ValueRole).toDouble(), 0.2);
    QCOMPARE(model.data(model.index(1, 4)).toString(), QStringLiteral("10240"));
    QCOMPARE(model.data(model.index(0, 5)).toString(), QStringLiteral("100.000"));
    QCOMPARE(curveValue(t.steps[0], Curve::TokensPerSecond), 5120.0);
  }
};

QTEST_GUILESS_MAIN(CurvesModelTest)
#include "curves_model_test.moc"
