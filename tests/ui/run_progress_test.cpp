// A run's progress read from its step metrics (the run file), not from the CLI's text.
#include "ui/run_progress.h"

#include <QTest>

using namespace moescope;
using namespace moescope::ui;

namespace {

storage::StepMetric step(int32_t s, double loss, double ms, double tokensPerS) {
  storage::StepMetric m;
  m.step = s;
  m.loss = loss;
  m.step_ms = ms;
  m.tokens_per_s = tokensPerS;
  return m;
}

}  // namespace

class RunProgressTest : public QObject {
  Q_OBJECT

 private slots:
  void nothingBeforeTheFirstStep() { QVERIFY(!progressOf({}, 20)); }

  void theLastStepAndTheTimeLeft() {
    // Warm-up 500 ms, then 40 and 60 ms: 3 of 20 done, 17 left at the mean of the steady steps (50 ms).
    const auto p = progressOf({step(0, 5.5, 500, 100), step(1, 5.4, 40, 14000), step(2, 5.3, 60, 12000)}, 20);
    QVERIFY(p);
    QCOMPARE(p->step, 3);
    QCOMPARE(p->steps, 20);
    QCOMPARE(p->loss, 5.3);
    QCOMPARE(p->tokensPerS, 12000.0);
    QCOMPARE(p->stepMs, 60.0);
    QCOMPARE(p->eta, QString("0:01"));         // 17 x 50 ms = 0.85 s
    QCOMPARE(p->peakMemoryBytes, int64_t{0});  // not counted (a CPU run)
  }

  void theDeviceMemoryPeakSoFar() {
    std::vector<storage::StepMetric> steps = {step(0, 5.5, 500, 100), step(1, 5.4, 40, 14000)};
    steps[0].peak_memory_bytes = int64_t{3} << 30;
    steps[1].peak_memory_bytes = int64_t{4} << 30;
    QCOMPARE(progressOf(steps, 20)->peakMemoryBytes, int64_t{4} << 30);
  }

  void aNanLossIsStillProgress() {
    const auto p = progressOf({step(0, qQNaN(), 10, 1)}, 2);
    QVERIFY(p);
    QVERIFY(qIsNaN(p->loss));
    QCOMPARE(p->step, 1);
  }

  void moreStepsThanAskedStillReadsWhole() {
    const auto p = progressOf({step(0, 1, 10, 1), step(1, 1, 10, 1)}, 0);
    QCOMPARE(p->steps, 2);
    QCOMPARE(p->eta, QString("0:00"));
  }

  void eta() {
    QCOMPARE(formatEta(0), QString("0:00"));
    QCOMPARE(formatEta(12.4), QString("0:12"));
    QCOMPARE(formatEta(62), QString("1:02"));
    QCOMPARE(formatEta(3723), QString("1:02:03"));
    QCOMPARE(formatEta(-5), QString("0:00"));
  }
};

QTEST_APPLESS_MAIN(RunProgressTest)
#include "run_progress_test.moc"
