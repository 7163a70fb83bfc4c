// Runs started from the GUI: the dialog filled in and a tiny CPU run launched, its spans in the
// timeline; a run cancelled midway leaves a readable file marked cancelled; an impossible layout is
// refused in the dialog with the CLI's message and no training process; closing the app cancels a run;
// a failed run shows its error.
#include "ui/run_launcher.h"

#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTest>
#include <memory>

#include "storage/run_reader.h"
#include "ui/main_window.h"
#include "ui/run_dialog.h"
#include "ui/run_panel.h"
#include "ui/run_view.h"
#include "ui/timeline_widget.h"

using namespace moescope;
using namespace moescope::ui;

namespace {

// Opens Run > New Run and fills in a tiny model on the ppmoe preset (pp 2 x tp 2, 4 experts).
RunDialog* fillTinyRun(MainWindow& window, const QString& out, int steps) {
  window.newRun();
  auto* dialog = window.findChild<RunDialog*>();
  if (!dialog) return nullptr;
  auto setSpin = [dialog](const char* name, int value) {
    auto* box = dialog->findChild<QSpinBox*>(QLatin1String(name));
    if (!box) qFatal("no spin box %s", name);
    box->setValue(value);
  };
  auto* preset = dialog->findChild<QComboBox*>(QStringLiteral("preset"));
  preset->setCurrentIndex(preset->findText(QStringLiteral("ppmoe")));
  setSpin("dModel", 32);
  setSpin("layers", 2);
  setSpin("heads", 4);
  setSpin("dFf", 64);
  setSpin("seq", 32);
  setSpin("experts", 4);
  setSpin("tp", 2);
  setSpin("pp", 2);
  setSpin("microbatches", 2);
  setSpin("globalBatch", 4);
  setSpin("steps", steps);
  dialog->findChild<QComboBox*>(QStringLiteral("layout"))->setCurrentText(QStringLiteral("ppmoe"));
  dialog->findChild<QComboBox*>(QStringLiteral("backend"))->setCurrentText(QStringLiteral("cpu"));
  dialog->findChild<QLineEdit*>(QStringLiteral("out"))->setText(out);
  return dialog;
}

}  // namespace

class RunLauncherTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

 private slots:
  void initTestCase() {
    QCoreApplication::setOrganizationName(QStringLiteral("moescope-tests"));
    QCoreApplication::setApplicationName(QStringLiteral("run_launcher_test"));
    QSettings().clear();
    QVERIFY(QFile::exists(cliPath()));
  }

  void aTinyRunShowsItsSpans() {
    MainWindow window;
    window.setRunsFolder(dir_.path());
    window.show();
    const QString out = dir_.filePath(QStringLiteral("tiny.moescope"));
    RunDialog* dialog = fillTinyRun(window, out, 3);
    QVERIFY(dialog);
    RunLauncher* launcher = window.runPanel()->launcher();
    QSignalSpy finished(launcher, &RunLauncher::finished);
    QSignalSpy progress(launcher, &RunLauncher::progress);
    QTest::mouseClick(dialog->runButton(), Qt::LeftButton);
    QVERIFY2(launcher->isRunning() || !finished.isEmpty(), qPrintable(dialog->message()));
    QVERIFY(finished.wait(20'000) || !finished.isEmpty());
    QCOMPARE(launcher->outcome(), RunLauncher::Outcome::Complete);
    QCOMPARE(progress.size(), 3);
    QCOMPARE(launcher->lastProgress().step, 3);
    QCOMPARE(launcher->lastProgress().steps, 3);
    QVERIFY(launcher->lastProgress().loss > 0);

    // The run's tab: the timeline holds the spans of every rank, and the run ends complete.
    QCOMPARE(window.runCount(), 1);
    RunView* run = window.currentRun();
    QVERIFY(run);
    QCOMPARE(run->path(), QFileInfo(out).absoluteFilePath());
    QTRY_VERIFY_WITH_TIMEOUT(!run->isLive(), 5000);
    const storage::Trace& trace = run->trace();
    QCOMPARE(trace.run.status, storage::RunStatus::Complete);
    QCOMPARE(trace.ranks.size(), size_t(4));
    QCOMPARE(trace.steps.size(), size_t(3));
    const size_t onFile = storage::RunReader::open(out.toStdString())->load().spanCount();
    QVERIFY(onFile > 0);
    QCOMPARE(trace.spanCount(), onFile);
    QVERIFY(run->timeline()->extent().end > run->timeline()->extent().start);
    QVERIFY2(window.runPanel()->text().contains(QStringLiteral("complete")),
             qPrintable(window.runPanel()->text()));
  }

  void cancelMidRunMarksTheFileCancelled() {
    MainWindow window;
    window.setRunsFolder(dir_.path());
    window.show();
    const QString out = dir_.filePath(QStringLiteral("cancelled.moescope"));
    RunDialog* dialog = fillTinyRun(window, out, 100'000);
    QVERIFY(dialog);
    RunLauncher* launcher = window.runPanel()->launcher();
    QSignalSpy finished(launcher, &RunLauncher::finished);
    QSignalSpy progress(launcher, &RunLauncher::progress);
    QTest::mouseClick(dialog->runButton(), Qt::LeftButton);
    QVERIFY2(launcher->isRunning(), qPrintable(dialog->message()));
    QTRY_VERIFY_WITH_TIMEOUT(progress.size() >= 2, 15'000);
    launcher->cancel();
    QCOMPARE(launcher->state(), RunLauncher::State::Cancelling);
    QVERIFY(finished.wait(15'000) || !finished.isEmpty());
    QCOMPARE(launcher->outcome(), RunLauncher::Outcome::Cancelled);
    QVERIFY(launcher->lastProgress().step < 100'000);

    const storage::Trace trace = storage::RunReader::open(out.toStdString())->load();
    QCOMPARE(trace.run.status, storage::RunStatus::Cancelled);
    QVERIFY(trace.spanCount() > 0);
    QVERIFY(trace.steps.size() >= 2);
    RunView* run = window.currentRun();
    QVERIFY(run);
    QTRY_COMPARE_WITH_TIMEOUT(run->trace().run.status, storage::RunStatus::Cancelled, 5000);
  }

  void anImpossibleLayoutIsRefusedBeforeAnyProcess() {
    MainWindow window;
    window.setRunsFolder(dir_.path());
    window.show();
    const QString out = dir_.filePath(QStringLiteral("impossible.moescope"));
    RunDialog* dialog = fillTinyRun(window, out, 3);
    QVERIFY(dialog);
    dialog->findChild<QSpinBox*>(QStringLiteral("experts"))->setValue(3);  // ppmoe: 3 experts over tp 2
    dialog->findChild<QSpinBox*>(QStringLiteral("topK"))->setValue(2);
    RunLauncher* launcher = window.runPanel()->launcher();
    QSignalSpy started(launcher, &RunLauncher::started);
    QTest::mouseClick(dialog->runButton(), Qt::LeftButton);
    QVERIFY(dialog->isVisible());
    QCOMPARE(dialog->message(), QString("layout: ppmoe needs n_experts (3) divisible by tp (2)"));
    QCOMPARE(dialog->findChild<QLabel*>(QStringLiteral("message"))->text(), dialog->message());
    QCOMPARE(started.size(), 0);
    QCOMPARE(launcher->processesStarted(), 0);
    QCOMPARE(launcher->state(), RunLauncher::State::Idle);
    QVERIFY(!QFile::exists(out));
    QCOMPARE(window.runCount(), 0);
  }

  void cudaIsDisabledWithItsReasonWhereItCannotRun() {
    const QString why = backendUnavailableReason(QStringLiteral("cuda"));
    RunDialog dialog(dir_.path());
    auto* backend = dialog.findChild<QComboBox*>(QStringLiteral("backend"));
    auto* model = qobject_cast<QStandardItemModel*>(backend->model());
    QVERIFY(model);
    QCOMPARE(model->item(1)->text(), QString("cuda"));
    QCOMPARE(model->item(1)->isEnabled(), why.isEmpty());
    if (!why.isEmpty()) QCOMPARE(model->item(1)->toolTip(), why);
    QVERIFY(backendUnavailableReason(QStringLiteral("cpu")).isEmpty());
  }

  void closingWhileRunningCancelsTheRun() {
    RunSettings s = loadPreset(QDir(samplesFolder()).filePath(QStringLiteral("ppmoe.toml")));
    s.dModel = 32;
    s.nLayers = 2;
    s.dFf = 64;
    s.seqLen = 32;
    s.globalBatch = 4;
    s.microbatches = 2;
    s.steps = 100'000;
    s.out = dir_.filePath(QStringLiteral("closed.moescope"));
    auto launcher = std::make_unique<RunLauncher>();
    QSignalSpy progress(launcher.get(), &RunLauncher::progress);
    QVERIFY(launcher->start(s));
    QTRY_VERIFY_WITH_TIMEOUT(!progress.isEmpty(), 15'000);
    launcher.reset();  // as when the window closes
    QCOMPARE(storage::RunReader::open(s.out.toStdString())->run().status, storage::RunStatus::Cancelled);
  }

  void aFailedRunShowsItsError() {
#ifdef Q_OS_UNIX
    // A stand-in for moescope-cli that fails the way train does during a run.
    const QString fake = dir_.filePath(QStringLiteral("fake-cli"));
    QFile script(fake);
    QVERIFY(script.open(QIODevice::WriteOnly));
    script.write(
        "#!/bin/sh\n"
        "echo 'step 1/5  loss 5.5000 (ce 5.4900, aux 1.0000)  9000 tokens/s  50.0 ms  ETA 0:01' >&2\n"
        "echo 'moescope-cli train: rank 2: out of memory' >&2\n"
        "exit 1\n");
    script.close();
    script.setPermissions(script.permissions() | QFileDevice::ExeOwner);
    RunPanel panel(nullptr, fake);
    RunSettings settings;
    settings.out = dir_.filePath(QStringLiteral("failed.moescope"));
    QSignalSpy finished(panel.launcher(), &RunLauncher::finished);
    QVERIFY(panel.start(settings));
    QVERIFY(finished.wait(10'000) || !finished.isEmpty());
    QCOMPARE(panel.launcher()->outcome(), RunLauncher::Outcome::Failed);
    QCOMPARE(finished.at(0).at(1).toString(), QString("rank 2: out of memory"));
    QCOMPARE(panel.launcher()->lastProgress().step, 1);
    QVERIFY2(panel.text().contains(QStringLiteral("failed: rank 2: out of memory")),
             qPrintable(panel.text()));
#else
    QSKIP("the stand-in CLI is a shell script");
#endif
  }
};

QTEST_MAIN(RunLauncherTest)
#include "run_launcher_test.moc"
