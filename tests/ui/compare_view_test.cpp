// The compare view: runs loaded, the table and its baseline, the picture.
#include "ui/compare_view.h"

#include <QTemporaryDir>
#include <QTest>

#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class CompareViewTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

 private slots:
  void runsSideBySide() {
    const QString a = dir_.filePath(QStringLiteral("a.moescope")),
                  b = dir_.filePath(QStringLiteral("b.moescope"));
    // One step each: 1 ms and 2 ms.
    test::writeRun(a.toStdString(), test::makeTrace(1, {{0, 0, 1'000'000, Category::ComputeAttention}}));
    test::writeRun(b.toStdString(), test::makeTrace(1, {{0, 0, 2'000'000, Category::ComputeAttention}}));
    CompareView view({a, b});
    QCOMPARE(view.runCount(), size_t(2));
    CompareTableModel* m = view.model();
    QCOMPARE(m->columnCount(), 3);
    QCOMPARE(m->index(0, 2).data(CompareTableModel::RatioRole).toDouble(), 2.0);
    view.setBaseline(1);
    QCOMPARE(m->baseline(), size_t(1));
    QCOMPARE(m->index(0, 1).data(CompareTableModel::RatioRole).toDouble(), 0.5);
    QVERIFY(view.pictureSize(1200).height() > 200);
    view.resize(1200, 800);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
  }

  void aBadRunThrows() {
    QVERIFY_THROWS_EXCEPTION(std::exception, CompareView({dir_.filePath(QStringLiteral("none.moescope")),
                                                          dir_.filePath(QStringLiteral("none2.moescope"))}));
  }
};

QTEST_MAIN(CompareViewTest)
#include "compare_view_test.moc"
