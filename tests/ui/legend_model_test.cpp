#include "ui/legend_model.h"

#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QTest>

#include "tests/ui/test_traces.h"
#include "ui/timeline_palette.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class LegendModelTest : public QObject {
  Q_OBJECT

 private slots:
  void aRowPerCategoryWithItsColour() {
    LegendModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(model.rowCount(), storage::kCategoryCount);
    const QModelIndex attention = model.index(int(Category::ComputeAttention));
    QCOMPARE(attention.data().toString(), QString("compute.attention"));
    QCOMPARE(attention.data(Qt::DecorationRole).value<QColor>(), categoryColor(Category::ComputeAttention));
    QCOMPARE(attention.data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Checked);
    QVERIFY(model.flags(attention) & Qt::ItemIsUserCheckable);
  }

  void uncheckingHides() {
    LegendModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy changed(&model, &LegendModel::hiddenChanged);
    const QModelIndex wait = model.index(int(Category::Wait));
    QVERIFY(model.setData(wait, Qt::Unchecked, Qt::CheckStateRole));
    QCOMPARE(changed.count(), 1);
    QVERIFY(model.hidden().test(size_t(Category::Wait)));
    QCOMPARE(wait.data(Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Unchecked);
    QVERIFY(model.setData(wait, Qt::Checked, Qt::CheckStateRole));
    QVERIFY(model.hidden().none());
    QCOMPARE(changed.count(), 2);
    QVERIFY(!model.setData(wait, QStringLiteral("x"), Qt::EditRole));
  }

  void countsSpans() {
    LegendModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.countSpans(test::makeTrace(1, {{0, 0, 10}, {0, 10, 20}, {0, 20, 30, Category::Wait}}));
    QVERIFY(model.index(int(Category::ComputeAttention)).data().toString().endsWith(QStringLiteral("(2)")));
    QVERIFY(model.index(int(Category::Wait)).data().toString().endsWith(QStringLiteral("(1)")));
  }
};

QTEST_GUILESS_MAIN(LegendModelTest)
#include "legend_model_test.moc"
