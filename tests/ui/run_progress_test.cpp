// The progress line of `moescope-cli train` read into step, loss, tokens/s, step time and ETA.
#include "ui/run_progress.h"

#include <QTest>

using namespace moescope::ui;

class RunProgressTest : public QObject {
  Q_OBJECT

 private slots:
  void parse_data() {
    QTest::addColumn<QString>("line");
    QTest::addColumn<bool>("isProgress");
    QTest::addColumn<int>("step");
    QTest::addColumn<int>("steps");
    QTest::addColumn<double>("loss");
    QTest::addColumn<double>("tokensPerS");
    QTest::addColumn<double>("stepMs");
    QTest::addColumn<QString>("eta");
    QTest::newRow("step")
        << "step 3/20  loss 5.4728 (ce 5.4625, aux 1.0260)  14689 tokens/s  34.9 ms  ETA 0:12" << true << 3
        << 20 << 5.4728 << 14689.0 << 34.9 << "0:12";
    QTest::newRow("hours")
        << "step 1/100000  loss 5.5554 (ce 5.5453, aux 1.0134)  9037 tokens/s  56.7 ms  ETA 1:34:27" << true
        << 1 << 100000 << 5.5554 << 9037.0 << 56.7 << "1:34:27";
    QTest::newRow("error") << "moescope-cli train: layout: dpmoe needs tp = 1, got tp = 2" << false << 0 << 0
                           << 0.0 << 0.0 << 0.0 << "";
    QTest::newRow("cancelled") << "moescope-cli train: cancelled" << false << 0 << 0 << 0.0 << 0.0 << 0.0
                               << "";
    QTest::newRow("empty") << "" << false << 0 << 0 << 0.0 << 0.0 << 0.0 << "";
  }
  void parse() {
    QFETCH(QString, line);
    QFETCH(bool, isProgress);
    const auto p = parseProgressLine(line);
    QCOMPARE(p.has_value(), isProgress);
    if (!p) return;
    QFETCH(int, step);
    QFETCH(int, steps);
    QFETCH(double, loss);
    QFETCH(double, tokensPerS);
    QFETCH(double, stepMs);
    QFETCH(QString, eta);
    QCOMPARE(*p, (StepProgress{step, steps, loss, tokensPerS, stepMs, eta}));
  }

  void aNanLossIsStillProgress() {
    const auto p = parseProgressLine(
        QStringLiteral("step 2/4  loss nan (ce nan, aux 0.0000)  100 tokens/s  1.0 ms  ETA 0:00"));
    QVERIFY(p);
    QCOMPARE(p->step, 2);
    QVERIFY(qIsNaN(p->loss));
  }
};

QTEST_GUILESS_MAIN(RunProgressTest)
#include "run_progress_test.moc"
