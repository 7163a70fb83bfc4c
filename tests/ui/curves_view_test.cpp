// The curves of two runs overlaid: the model holds the first run's steps, hovering a panel gives both
// runs' values at the step under the pointer, and the picture exports with a line per run and curve.
#include "ui/curves_view.h"

#include <QTest>

#include "tests/common/temp_dir.h"

using namespace moescope;
using namespace moescope::ui;

namespace {

RunCurves run(const char* name, double scale) {
  RunCurves r{QString::fromUtf8(name), {}};
  for (int32_t s = 0; s < 11; ++s)
    r.steps.push_back({s, scale * (5 - 0.1 * s), scale * (4.9 - 0.1 * s), 0.01 * s, 512, 10.0 + s,
                       51200.0 / (10 + s), 0, 0});
  return r;
}

}  // namespace

class CurvesViewTest : public QObject {
  Q_OBJECT

 private slots:
  void overlaidRunsAndHover() {
    CurvesView view;
    view.resize(1000, 800);
    view.setRuns({run("a", 1), run("b", 2)});
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QCOMPARE(view.model()->rowCount(), 11);
    QCOMPARE(view.model()->data(view.model()->index(10, 1), CurvesModel::ValueRole).toDouble(), 4.0);
    const CurvesGeometry g = view.geometry();
    QCOMPARE(g.panels.size(), kCurves.size());
    QCOMPARE(g.firstStep, 0.0);
    QCOMPARE(g.lastStep, 10.0);
    // Halfway along the loss panel: step 5, where a's loss is 4.5 and b's 9.
    const QRect loss = g.panels[0];
    const QPoint at(loss.left() + (loss.width() - 1) / 2, loss.center().y());
    QCOMPARE(g.hit(at), std::optional(std::pair(Curve::Loss, int32_t{5})));
    const QString tip = view.toolTipAt(at);
    QVERIFY2(tip.startsWith(QStringLiteral("loss · step 5")), qPrintable(tip));
    QVERIFY2(tip.contains(QStringLiteral("a: 4.5")), qPrintable(tip));
    QVERIFY2(tip.contains(QStringLiteral("b: 9")), qPrintable(tip));
    const QRect stepTime = g.panels[4];
    QCOMPARE(g.hit(QPointF(stepTime.right(), stepTime.top() + 1)),
             std::optional(std::pair(Curve::StepTime, int32_t{10})));
    QVERIFY(view.toolTipAt(QPointF(1, 1)).isEmpty());
  }

  void exportsTheOverlay() {
    moescope::testing::TempDir dir;
    CurvesView view;
    view.setRuns({run("a", 1), run("b", 2)});
    const QString svg = QString::fromStdString((dir.path() / "curves.svg").string());
    QString error;
    QVERIFY2(view.exportPicture(svg, 1200, &error), qPrintable(error));
    QFile file(svg);
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QByteArray text = file.readAll();
    // Two runs x five curves, each one path.
    QVERIFY2(text.count("<path") >= 10, text.left(400).constData());
    QVERIFY(text.contains("curves: a · b"));
  }
};

QTEST_MAIN(CurvesViewTest)
#include "curves_view_test.moc"
