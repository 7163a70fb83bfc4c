// Runs started from the GUI: the dialog (built from the config schema) filled in and a tiny CPU run
// launched, its progress read from its run file, its spans in the timeline, its file one file once it
// ends (no -wal: a copy of it alone opens whole); a run cancelled midway leaves a readable file marked
// cancelled; an impossible layout is refused in the dialog with the CLI's message and no training
// process; closing the app cancels a run; a failed run shows its error; the run bar shows while a run
// goes and Run > Cancel Run is enabled only then; the four schedules and virtual stages are offered.
#include "ui/run_launcher.h"

#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTest>
#include <memory>

#include "storage/run_reader.h"
#include "tests/ui/test_schema.h"
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
  window.setConfigSchema(test::schema());
  window.newRun();
  auto* dialog = window.findChild<RunDialog*>();
  if (!dialog) return nullptr;
  auto setSpin = [dialog](const char* key, int value) {
    auto* box = dialog->findChild<QSpinBox*>(QLatin1String(key));
    if (!box) qFatal("no spin box %s", key);
    box->setValue(value);
  };
  auto* preset = dialog->findChild<QComboBox*>(QStringLiteral("preset"));
  preset->setCurrentIndex(preset->findText(QStringLiteral("ppmoe")));
  setSpin("model.d_model", 32);
  setSpin("model.n_layers", 2);
  setSpin("model.n_heads", 4);
  setSpin("model.d_ff", 64);
  setSpin("model.seq_len", 32);
  setSpin("model.n_experts", 4);
  setSpin("parallel.tp", 2);
  setSpin("parallel.pp", 2);
  setSpin("parallel.microbatches", 2);
  setSpin("train.global_batch", 4);
  setSpin("train.steps", steps);
  dialog->findChild<QComboBox*>(QStringLiteral("parallel.layout"))->setCurrentText(QStringLiteral("ppmoe"));
  dialog->findChild<QComboBox*>(QStringLiteral("backend"))->setCurrentText(QStringLiteral("cpu"));
  dialog->findChild<QLineEdit*>(QStringLiteral("out"))->setText(out);
  return dialog;
}

// The settings of a tiny run on the ppmoe preset, without the dialog.
RunSettings tinySettings(const QString& out, int steps) {
  const ConfigSchema schema = test::schema();
  RunSettings s = presetSettings(schema, schema.preset(QStringLiteral("ppmoe")));
  s.values[QStringLiteral("model.d_model")] = qlonglong(32);
  s.values[QStringLiteral("model.n_layers")] = qlonglong(2);
  s.values[QStringLiteral("model.d_ff")] = qlonglong(64);
  s.values[QStringLiteral("model.seq_len")] = qlonglong(32);
  s.values[QStringLiteral("train.global_batch")] = qlonglong(4);
  s.values[QStringLiteral("parallel.microbatches")] = qlonglong(2);
  s.values[QStringLiteral("train.steps")] = qlonglong(steps);
  s.out = out;
  return s;
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
    QVERIFY(!window.cancelRunAction()->isEnabled());  // nothing to cancel yet
    QTest::mouseClick(dialog->runButton(), Qt::LeftButton);
    QVERIFY2(launcher->isRunning() || !finished.isEmpty(), qPrintable(dialog->message()));
    // The run bar shows (through its tool-bar action) with its progress bar and Cancel.
    QVERIFY(window.runBarAction()->isVisible());
    QTRY_VERIFY_WITH_TIMEOUT(window.runPanel()->isVisible(), 2000);  // the tool bar lays out on the next turn
    QVERIFY(window.runPanel()->findChild<QProgressBar*>()->isVisible());
    QVERIFY(window.runPanel()->findChild<QPushButton*>()->isVisible());
    QVERIFY(window.cancelRunAction()->isEnabled() || !finished.isEmpty());
    QVERIFY(finished.wait(20'000) || !finished.isEmpty());
    QCOMPARE(launcher->outcome(), RunLauncher::Outcome::Complete);
    QVERIFY(!window.cancelRunAction()->isEnabled());
    // Progress comes from the run file's steps: at least the last one, each step once at most.
    QVERIFY(progress.size() >= 1 && progress.size() <= 3);
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

    // The run is one file: the CLI checkpointed its WAL into it (an empty -wal may stay while the tab
    // read it as it finished), and a copy of the .moescope alone opens with every span.
    const QFileInfo wal(out + QStringLiteral("-wal"));
    QVERIFY(!wal.exists() || wal.size() == 0);
    const QString copy = dir_.filePath(QStringLiteral("copy-of-tiny.moescope"));
    QVERIFY(QFile::copy(out, copy));
    QCOMPARE(storage::RunReader::open(copy.toStdString())->load().spanCount(), onFile);
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
    dialog->findChild<QSpinBox*>(QStringLiteral("model.n_experts"))
        ->setValue(3);  // ppmoe: 3 experts over tp 2
    dialog->findChild<QSpinBox*>(QStringLiteral("model.top_k"))->setValue(2);
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
    RunDialog dialog(dir_.path(), nullptr, cliPath(), test::schema());
    auto* backend = dialog.findChild<QComboBox*>(QStringLiteral("backend"));
    auto* model = qobject_cast<QStandardItemModel*>(backend->model());
    QVERIFY(model);
    QCOMPARE(model->item(1)->text(), QString("cuda"));
    QCOMPARE(model->item(1)->isEnabled(), why.isEmpty());
    if (!why.isEmpty()) QCOMPARE(model->item(1)->toolTip(), why);
    QVERIFY(backendUnavailableReason(QStringLiteral("cpu")).isEmpty());
    if (why.isEmpty()) return;
    // The note gives the reason for the dialog's own parallel sizes (pp 2 x tp 2 on the ppmoe preset),
    // as the CLI gives it for them, not the reason for its defaults.
    RunSettings cuda = dialog.settings();
    cuda.backend = QStringLiteral("cuda");
    cuda.out.clear();
    QCOMPARE(dialog.backendNote(), QStringLiteral("cuda: %1").arg(checkRun(cuda).message));
  }

  // The four schedules are offered; virtual stages only with interleaved (the others take 1); the
  // check shows the schedule's theoretical bubble and its passes, labelled as the timeline labels them.
  void theFourSchedulesAndVirtualStagesAreOffered() {
    RunDialog dialog(dir_.path(), nullptr, cliPath(), test::schema());
    auto* schedule = dialog.findChild<QComboBox*>(QStringLiteral("parallel.schedule"));
    auto* stages = dialog.findChild<QSpinBox*>(QStringLiteral("parallel.virtual_stages"));
    QVERIFY(schedule && stages);
    QStringList offered;
    for (int i = 0; i < schedule->count(); ++i) offered << schedule->itemText(i);
    QCOMPARE(offered, (QStringList{"gpipe", "1f1b", "interleaved", "zb-h1"}));
    QCOMPARE(schedule->currentText(), QString("1f1b"));  // the ppmoe preset's
    QVERIFY(!stages->isEnabled());
    QVERIFY(dialog.setValue(QStringLiteral("parallel.schedule"), QStringLiteral("interleaved")));
    QVERIFY(stages->isEnabled());
    QVERIFY(dialog.setValue(QStringLiteral("parallel.virtual_stages"), 2));
    // ppmoe: 4 layers over pp 2 x 2 chunks, one layer a chunk.
    dialog.findChild<QComboBox*>(QStringLiteral("backend"))->setCurrentText(QStringLiteral("cpu"));
    dialog.findChild<QLineEdit*>(QStringLiteral("out"))->setText(dir_.filePath(QStringLiteral("v.moescope")));
    const RunSettings s = dialog.settings();
    QCOMPARE(s.values.value(QStringLiteral("parallel.virtual_stages")).toLongLong(), 2);
    QVERIFY(trainArguments(s, QStringLiteral("c.toml"), false)
                .contains(QStringLiteral("parallel.virtual_stages=2")));
    QVERIFY2(dialog.check(), qPrintable(dialog.message()));
    // pp 2, 4 micro-batches, 2 chunks: (p - 1) / (v m + p - 1) = 1 / 9.
    QVERIFY2(
        dialog.message().contains(QStringLiteral("schedule interleaved: pp 2, 4 micro-batches, 2 virtual "
                                                 "stages; theoretical bubble 11.1%")),
        qPrintable(dialog.message()));
    const QString passes = dialog.findChild<QLabel*>(QStringLiteral("message"))->toolTip();
    QVERIFY2(passes.contains(QStringLiteral("F0.1")), qPrintable(passes));
    // ZB-H1 takes one chunk a stage: the field goes back to 1 and is locked; W passes in the plan.
    QVERIFY(dialog.setValue(QStringLiteral("parallel.schedule"), QStringLiteral("zb-h1")));
    QVERIFY(!stages->isEnabled());
    QCOMPARE(stages->value(), 1);
    QVERIFY2(dialog.check(), qPrintable(dialog.message()));
    QVERIFY2(dialog.message().contains(QStringLiteral("schedule zb-h1")), qPrintable(dialog.message()));
    QVERIFY(dialog.findChild<QLabel*>(QStringLiteral("message"))->toolTip().contains(QStringLiteral("W0")));
  }

  // The fixture is the contract of `moescope-cli config --json`; where this CLI prints it, the two
  // agree on every key the dialog relies on.
  void theCliSchemaKeepsTheContract() {
    QProcess help;
    help.start(cliPath(), {QStringLiteral("--help")});
    QVERIFY(help.waitForFinished(15'000));
    if (!QString::fromUtf8(help.readAllStandardOutput())
             .contains(QRegularExpression(QStringLiteral("\\n\\s+config\\s"))))
      QSKIP("this moescope-cli has no config command (the dialog then says so and offers no run)");
    QString error;
    const std::optional<ConfigSchema> cli = loadConfigSchema(cliPath(), &error);
    QVERIFY2(cli, qPrintable(error));
    for (const ConfigKey& k : test::schema().keys) {
      const ConfigKey* real = cli->find(k.key);
      QVERIFY2(real, qPrintable(k.key));
      QCOMPARE(real->type, k.type);
    }
    QCOMPARE(cli->find(QStringLiteral("parallel.schedule"))->choices,
             (QStringList{"gpipe", "1f1b", "interleaved", "zb-h1"}));
    QVERIFY(cli->preset(QStringLiteral("ppmoe")));
  }

  void closingWhileRunningCancelsTheRun() {
    const RunSettings s = tinySettings(dir_.filePath(QStringLiteral("closed.moescope")), 100'000);
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
        "echo 'a last line of other text' >&2\n"
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
    QCOMPARE(panel.launcher()->lastProgress().step, 0);  // no run file: no step, whatever the text says
    QVERIFY2(panel.text().contains(QStringLiteral("failed: rank 2: out of memory")),
             qPrintable(panel.text()));
#else
    QSKIP("the stand-in CLI is a shell script");
#endif
  }

  // The run bar shows what a step reports: its progress bar at the step, the step, loss, tokens/s and
  // the time left in its label (issue 17's item 8: the bar was empty), without a process.
  void theRunBarShowsTheStepLossAndTimeLeft() {
    RunPanel panel;
    panel.show();
    emit panel.launcher()->progress({3, 20, 5.3, 12000, 60, QStringLiteral("0:01")});
    const QString text = panel.text();
    QVERIFY2(text.contains(QString::fromUtf8("step 3/20 · loss ")), qPrintable(text));
    QVERIFY2(text.contains(QLocale().toString(5.3, 'f', 4)), qPrintable(text));
    QVERIFY2(text.contains(QStringLiteral("ETA 0:01")), qPrintable(text));
    QVERIFY(panel.findChild<QLabel*>(QStringLiteral("runLabel"))->isVisible());
    auto* bar = panel.findChild<QProgressBar*>();
    QVERIFY(bar->isVisible());
    QCOMPARE(bar->value(), 3);
    QCOMPARE(bar->maximum(), 20);
    QCOMPARE(bar->text(), QStringLiteral("3 / 20"));
    // The device memory peak so far where the backend counts it (CUDA); a CPU run's label has none.
    QVERIFY2(!text.contains(QStringLiteral("peak")), qPrintable(text));
    emit panel.launcher()->progress({4, 20, 5.2, 12000, 60, QStringLiteral("0:01"), int64_t{17} << 30});
    QVERIFY2(panel.text().contains(QString::fromUtf8("tokens/s · peak 17.0 GiB · ETA")),
             qPrintable(panel.text()));
  }
};

QTEST_MAIN(RunLauncherTest)
#include "run_launcher_test.moc"
