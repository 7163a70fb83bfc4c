// The GUI's import, off the GUI thread: two ranks imported with progress rising to the end; a cancel
// ends it with nothing written; bad input is a one-line failure.
#include "ui/import_runner.h"

#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "storage/run_reader.h"

using namespace moescope;
using namespace moescope::ui;

namespace {

const QString kData = QStringLiteral(MOESCOPE_SOURCE_DIR "/tests/storage/kineto/");

ImportSettings pp2(const QString& output) {
  ImportSettings s;
  s.traces = {kData + QStringLiteral("pp2-rank0.json"), kData + QStringLiteral("pp2-rank1.json")};
  s.output = output;
  s.pp = 2;
  return s;
}

}  // namespace

class ImportRunnerTest : public QObject {
  Q_OBJECT

 private slots:
  void importsWithProgress() {
    QTemporaryDir dir;
    const QString out = dir.filePath(QStringLiteral("pp2.moescope"));
    ImportRunner runner;
    QSignalSpy progress(&runner, &ImportRunner::progress);
    QSignalSpy finished(&runner, &ImportRunner::finished);
    QVERIFY(runner.start(pp2(out)));
    QVERIFY(runner.isRunning());
    QVERIFY(!runner.start(pp2(out)));  // one at a time
    QVERIFY(finished.wait(20000));
    QCOMPARE(finished.at(0).at(0).value<ImportRunner::Outcome>(), ImportRunner::Outcome::Complete);
    QCOMPARE(finished.at(0).at(1).toString(), QStringLiteral("2 ranks, 1 steps, 59 spans, 21 GPU records"));
    QVERIFY(!runner.isRunning());
    QVERIFY(progress.size() >= 2);
    QCOMPARE(progress.first().at(0).toInt(), 0);
    QCOMPARE(progress.last().at(0).toInt(), 1000);
    for (qsizetype i = 1; i < progress.size(); ++i)
      QVERIFY(progress.at(i - 1).at(0).toInt() <= progress.at(i).at(0).toInt());
    const storage::Trace t = storage::RunReader::open(out.toStdString())->load();
    QCOMPARE(t.ranks.size(), size_t{2});
    QCOMPARE(t.gpu.size(), size_t{21});
  }

  void cancelWritesNothing() {
    QTemporaryDir dir;
    const QString out = dir.filePath(QStringLiteral("pp2.moescope"));
    ImportRunner runner;
    QSignalSpy finished(&runner, &ImportRunner::finished);
    QVERIFY(runner.start(pp2(out)));
    runner.cancel();
    QVERIFY(finished.wait(20000));
    QCOMPARE(finished.at(0).at(0).value<ImportRunner::Outcome>(), ImportRunner::Outcome::Cancelled);
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden).size(), 0);
    // It can run again afterwards.
    QVERIFY(runner.start(pp2(out)));
    QVERIFY(finished.wait(20000));
    QCOMPARE(runner.outcome(), ImportRunner::Outcome::Complete);
    QVERIFY(QFile::exists(out));
  }

  void badInputFailsInOneLine() {
    QTemporaryDir dir;
    ImportSettings s;
    s.traces = {kData + QStringLiteral("not-kineto.json")};
    s.output = dir.filePath(QStringLiteral("x.moescope"));
    ImportRunner runner;
    QSignalSpy finished(&runner, &ImportRunner::finished);
    QVERIFY(runner.start(s));
    QVERIFY(finished.wait(20000));
    QCOMPARE(finished.at(0).at(0).value<ImportRunner::Outcome>(), ImportRunner::Outcome::Failed);
    const QString message = finished.at(0).at(1).toString();
    QVERIFY2(message.endsWith(
                 QStringLiteral("not-kineto.json: not a PyTorch profiler (Kineto) trace (no schemaVersion, "
                                "and none of Kineto's event categories)")),
             qPrintable(message));
    QVERIFY(!message.contains(QLatin1Char('\n')));
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden).size(), 0);
  }

  void destroyingARunningImportCancelsIt() {
    QTemporaryDir dir;
    const QString out = dir.filePath(QStringLiteral("pp2.moescope"));
    {
      ImportRunner runner;
      QVERIFY(runner.start(pp2(out)));
      runner.cancel();
    }  // joins its thread
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden).size(), 0);
  }
};

QTEST_GUILESS_MAIN(ImportRunnerTest)
#include "import_runner_test.moc"
