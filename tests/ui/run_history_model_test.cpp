// The run history's model: a folder's run files with layout, status and headline numbers (the first
// step left out of the means), newest first; unreadable files say why; QAbstractItemModelTester.
#include "ui/run_history_model.h"

#include <QAbstractItemModelTester>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;

class RunHistoryModelTest : public QObject {
  Q_OBJECT

 private slots:
  void listsRunsWithTheirNumbers() {
    QTemporaryDir dir;
    auto trace = test::makeTrace(2, {{0, 0, 1000}, {1, 500, 1500}});
    trace.run.pp = 2;
    trace.run.microbatches = 4;
    // Step 0 is the warm-up: 100 ms; then 10 and 20 ms, 1000 and 500 tokens/s.
    const double ms[] = {100, 10, 20}, tps[] = {10, 1000, 500};
    for (int s = 0; s < 3; ++s) {
      storage::StepMetric m;
      m.step = s;
      m.step_ms = ms[s];
      m.tokens_per_s = tps[s];
      m.peak_memory_bytes = (int64_t{5} << 30) + s;  // the device memory peak so far: the last is the run's
      trace.steps.push_back(m);
    }
    test::writeRun(dir.filePath(QStringLiteral("a.moescope")).toStdString(), trace);
    test::writeRun(dir.filePath(QStringLiteral("b.moescope")).toStdString(), test::makeTrace(1, {{0, 0, 10}}),
                   storage::RunStatus::Cancelled);
    QFile junk(dir.filePath(QStringLiteral("junk.moescope")));
    QVERIFY(junk.open(QIODevice::WriteOnly));
    junk.write("not a run file");
    junk.close();
    QFile(dir.filePath(QStringLiteral("notes.txt"))).open(QIODevice::WriteOnly);

    RunHistoryModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setFolder(dir.path());
    QCOMPARE(model.rowCount(), 3);
    int a = -1, b = -1, bad = -1;
    for (int row = 0; row < 3; ++row) {
      const QString name = model.index(row, RunHistoryModel::File).data().toString();
      if (name == "a.moescope") a = row;
      if (name == "b.moescope") b = row;
      if (name == "junk.moescope") bad = row;
    }
    QVERIFY(a >= 0 && b >= 0 && bad >= 0);
    const RunHistoryEntry& e = model.entry(a);
    QVERIFY(e.readable);
    QCOMPARE(e.layout, QString("ppmoe pp 2 tp 1 dp 1, 4 mb 1f1b"));
    QCOMPARE(e.status, QString("complete"));
    QCOMPARE(e.backend, QString("cpu"));
    QCOMPARE(e.steps, 3);
    QCOMPARE(e.stepMs, 15.0);
    QCOMPARE(e.tokensPerS, 750.0);
    QCOMPARE(model.index(a, RunHistoryModel::Steps).data().toInt(), 3);
    QCOMPARE(model.index(b, RunHistoryModel::Status).data().toString(), QString("cancelled"));
    QCOMPARE(model.index(b, RunHistoryModel::StepTime).data().toString(), QString());
    QCOMPARE(e.peakMemoryBytes, (int64_t{5} << 30) + 2);
    QCOMPARE(model.index(a, RunHistoryModel::PeakMemory).data().toString(), QString("5.0 GiB"));
    QCOMPARE(model.index(b, RunHistoryModel::PeakMemory).data().toString(), QString());  // not counted
    QCOMPARE(model.headerData(RunHistoryModel::PeakMemory, Qt::Horizontal).toString(),
             QString("Peak memory"));
    QVERIFY(!model.entry(bad).readable);
    QVERIFY(model.entry(bad).status.startsWith(QStringLiteral("unreadable: ")));
    QCOMPARE(model.headerData(RunHistoryModel::TokensPerS, Qt::Horizontal).toString(), QString("Tokens/s"));

    QFile::remove(dir.filePath(QStringLiteral("b.moescope")));
    model.reload();
    QCOMPARE(model.rowCount(), 2);
  }
};

QTEST_GUILESS_MAIN(RunHistoryModelTest)
#include "run_history_model_test.moc"
