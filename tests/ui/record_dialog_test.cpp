// File > Record: the menu opens the dialog; its fields give the exact argument list; bad input is
// refused in the dialog with its reason and no process started; a real `moescope-cli record` run from
// it: a program that makes no CUDA or NVTX call (nothing recorded: the error dialog says record's last
// line, no run opens), nvtx_probe (a program that calls NVTX only: its run opens in the window; failing,
// its run opens marked failed beside the error dialog), and a recording cancelled midway (the whole
// process group ends, record itself finishing).
#include "ui/record_dialog.h"

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

#include "storage/trace_model.h"
#include "tests/common/binary_path.h"
#include "tests/ui/test_dialogs.h"
#include "ui/main_window.h"
#include "ui/run_view.h"

using namespace moescope;
using namespace moescope::ui;
using test::DialogCatcher;
using test::menuAction;

namespace {

template <class W>
W* field(const QDialog& dialog, const char* name) {
  auto* w = dialog.findChild<W*>(QLatin1String(name));
  if (!w) qFatal("no field %s", name);
  return w;
}

// Types the command and run file as a user does, every option left as it is.
void fill(const RecordDialog& dialog, const QString& command, const QString& output) {
  field<QLineEdit>(dialog, "command")->setText(command);
  field<QLineEdit>(dialog, "output")->setText(output);
}

}  // namespace

class RecordDialogTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

  // A dialog opened from the window's File > Record.
  RecordDialog* openFromMenu(MainWindow& window) {
    QAction* record = menuAction(window, QStringLiteral("Record..."));
    if (!record) return nullptr;
    record->trigger();
    return window.recordDialog();
  }

  // The dialog from the menu, set to record nvtx_probe with its arguments into dir_/name.
  RecordDialog* probeDialog(MainWindow& window, const QString& probeArguments, const QString& name) {
    RecordDialog* dialog = openFromMenu(window);
    if (!dialog) return nullptr;
    const QString probe = QString::fromStdString(moescope::testing::binaryPath("nvtx_probe").string());
    fill(*dialog, QStringLiteral("'%1' %2").arg(probe, probeArguments), dir_.filePath(name));
    return dialog;
  }

 private slots:
  void initTestCase() {
    QCoreApplication::setOrganizationName(QStringLiteral("moescope-tests"));
    QCoreApplication::setApplicationName(QStringLiteral("record_dialog_test"));
    QSettings().clear();
    QVERIFY(QFileInfo::exists(cliPath()));
#ifndef MOESCOPE_HAVE_INJECT
    // This build has no injection library (no CUDA): record refuses to start without one. A program
    // that calls neither NVTX nor CUDA never loads it, so a path that names none lets record run it.
    qputenv("MOESCOPE_INJECT_LIBRARY", "/nonexistent/libmoescope_inject.so");
#endif
  }

  void init() {
    QSettings().clear();
  }

  void theFieldsGiveTheArguments() {
    RecordDialog dialog(dir_.path());
    QCOMPARE(dialog.settings().output, dir_.filePath(QStringLiteral("record.moescope")));
    field<QLineEdit>(dialog, "command")->setText(R"(torchrun --nproc-per-node 2 "my train.py")");
    field<QLineEdit>(dialog, "workingDir")->setText(dir_.path());
    field<QPlainTextEdit>(dialog, "environment")->setPlainText(QStringLiteral("NCCL_DEBUG=INFO"));
    field<QLineEdit>(dialog, "output")->setText(QStringLiteral("job.moescope"));
    field<QCheckBox>(dialog, "replace")->setChecked(true);
    field<QSpinBox>(dialog, "pp")->setValue(4);
    field<QSpinBox>(dialog, "tp")->setValue(2);
    field<QSpinBox>(dialog, "dp")->setValue(3);
    field<QLineEdit>(dialog, "order")->setText(QStringLiteral("tp-pp-dp"));
    field<QComboBox>(dialog, "schedule")->setCurrentText(QStringLiteral("gpipe"));
    field<QLineEdit>(dialog, "rules")->setText(QStringLiteral("/rules/megatron.toml"));
    field<QLineEdit>(dialog, "steps")->setText(QStringLiteral("5:9"));
    field<QCheckBox>(dialog, "nvtx")->setChecked(false);
    field<QComboBox>(dialog, "launchCalls")->setCurrentText(QStringLiteral("off"));
    field<QCheckBox>(dialog, "kernels")->setChecked(false);
    QVERIFY(!field<QComboBox>(dialog, "launchCalls")->isEnabled());  // launch calls go with kernels
    const QStringList expected = QStringLiteral(
                                     "record --pp 4 --tp 2 --dp 3 --order tp-pp-dp --schedule gpipe "
                                     "--rules /rules/megatron.toml --steps 5:9 --no-nvtx --no-kernels "
                                     "--launch-calls off --force -o %1 -- torchrun --nproc-per-node 2")
                                     .arg(dir_.filePath("job.moescope"))
                                     .split(QLatin1Char(' '))
                                 << QStringLiteral("my train.py");
    QCOMPARE(recordArguments(dialog.settings()), expected);
    QCOMPARE(dialog.settings().environment, QStringLiteral("NCCL_DEBUG=INFO"));
    // What setSettings() puts in the fields comes back whole.
    const RecordSettings s = dialog.settings();
    RecordDialog again(dir_.path());
    again.setSettings(s);
    QCOMPARE(again.settings(), s);
  }

  void badInputIsRefusedInTheDialog() {
    MainWindow window;
    window.setRunsFolder(dir_.path());
    RecordDialog* dialog = openFromMenu(window);
    QVERIFY(dialog);
    QVERIFY(dialog->isVisible());
    auto* message = field<QLabel>(*dialog, "message");
    const struct {
      QString command, output, steps, problem;
    } cases[] = {
        {"", "a.moescope", "", "Enter the command to record (a program and its arguments)."},
        {"sh -c true", dir_.filePath("no/such/a.moescope"), "",
         dir_.filePath("no/such") + ": the run file's folder does not exist"},
        {"sh -c true", "/proc/a.moescope", "", "/proc: the run file's folder cannot be written"},
        {"sh -c true", dir_.filePath("a.moescope"), "5",
         "steps '5': expected A:B, two step numbers (0 or more)"},
        {"sh -c true", dir_.filePath("a.moescope"), "3:x",
         "steps '3:x': expected A:B, two step numbers (0 or more)"},
    };
    for (const auto& c : cases) {
      fill(*dialog, c.command, c.output);
      field<QLineEdit>(*dialog, "steps")->setText(c.steps);
      QTest::mouseClick(dialog->recordButton(), Qt::LeftButton);
      QCOMPARE(dialog->message(), c.problem);
      QCOMPARE(message->text(), c.problem);
      QVERIFY(dialog->isVisible());
      QVERIFY(dialog->recordButton()->isEnabled());
      QCOMPARE(dialog->runner()->processesStarted(), 0);
    }
    QVERIFY(!QFileInfo::exists(dir_.filePath(QStringLiteral("a.moescope"))));
    QCOMPARE(window.runCount(), 0);
  }

  void nothingRecordedIsAnErrorDialog() {
    MainWindow window;
    RecordDialog* dialog = openFromMenu(window);
    QVERIFY(dialog);
    const QString out = dir_.filePath(QStringLiteral("none.moescope"));
    fill(*dialog, QStringLiteral("sh -c 'echo from the program; echo on its stderr >&2'"), out);
    QSignalSpy finished(dialog->runner(), &RecordRunner::finished);
    DialogCatcher catcher;
    catcher.arm();
    QTest::mouseClick(dialog->recordButton(), Qt::LeftButton);
    QCOMPARE(dialog->runner()->processesStarted(), 1);
    QVERIFY(finished.wait(20'000));
    QCOMPARE(dialog->runner()->outcome(), RecordRunner::Outcome::Failed);
    QTRY_VERIFY_WITH_TIMEOUT(catcher.seen, 5000);
    QCOMPARE(catcher.title, QStringLiteral("Record failed"));
    QCOMPARE(catcher.text, QStringLiteral("no process of the command called NVTX or CUDA: nothing was "
                                          "recorded, no run file written"));
    QVERIFY(catcher.details.startsWith(QStringLiteral("No run file was written.")));
    // The program's output and record's line stayed in view; nothing opened.
    const QString log = dialog->outputText();
    QVERIFY2(log.contains(QStringLiteral("from the program")), qPrintable(log));
    QVERIFY2(log.contains(QStringLiteral("on its stderr")), qPrintable(log));
    QVERIFY2(log.contains(QStringLiteral("moescope: no process of the command")), qPrintable(log));
    QVERIFY(dialog->isVisible());
    QVERIFY(dialog->recordButton()->isEnabled());
    QCOMPARE(window.runCount(), 0);
    QVERIFY(!QFileInfo::exists(out));
    // The settings are kept for the next recording.
    QCOMPARE(loadRecordSettings({}).output, out);
  }

  void cancelEndsTheProgramAndRecordFinishes() {
    MainWindow window;
    RecordDialog* dialog = openFromMenu(window);
    QVERIFY(dialog);
    fill(*dialog, QStringLiteral("sh -c 'echo started; sleep 60'"),
         dir_.filePath(QStringLiteral("c.moescope")));
    RecordRunner* runner = dialog->runner();
    runner->process()->setKillTimeoutMs(120'000);  // longer than the wait: SIGINT alone must do it
    QSignalSpy finished(runner, &RecordRunner::finished);
    DialogCatcher catcher;
    catcher.arm();
    QTest::mouseClick(dialog->recordButton(), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(dialog->outputText().contains(QStringLiteral("started")), 10'000);
    const qint64 group = runner->process()->processId();
    QVERIFY(group > 0);
    QVERIFY(!dialog->recordButton()->isEnabled());
    QTest::mouseClick(dialog->cancelButton(), Qt::LeftButton);
    QVERIFY(dialog->isVisible());  // Cancel stops the recording first
    QVERIFY(finished.wait(20'000));
    QCOMPARE(runner->outcome(), RecordRunner::Outcome::Cancelled);
    // record was not killed: it ended by itself, after saying what it recorded (nothing).
    QVERIFY2(dialog->message().startsWith(QStringLiteral("Recording cancelled: no process of the command")),
             qPrintable(dialog->message()));
    QTRY_VERIFY_WITH_TIMEOUT(processesOfGroup(group).isEmpty(), 5000);
    QVERIFY(!catcher.seen);  // a cancel asked for is no error
    QVERIFY(dialog->recordButton()->isEnabled());
  }

  void aRecordedRunOpensInTheWindow() {
#ifndef MOESCOPE_HAVE_INJECT
    QSKIP("needs the injection library (a CUDA build) to record nvtx_probe's ranges");
#else
    MainWindow window;
    RecordDialog* dialog = probeDialog(window, QStringLiteral("0 2 4 2 0"), QStringLiteral("probe.moescope"));
    QVERIFY(dialog);
    const QString out = dir_.filePath(QStringLiteral("probe.moescope"));
    field<QSpinBox>(*dialog, "pp")->setValue(2);
    QSignalSpy recorded(dialog, &RecordDialog::recorded);
    QTest::mouseClick(dialog->recordButton(), Qt::LeftButton);
    QVERIFY(recorded.wait(30'000));
    QCOMPARE(recorded.at(0).at(0).toString(), out);
    QCOMPARE(window.runCount(), 1);
    RunView* run = window.currentRun();
    QVERIFY(run);
    QCOMPARE(run->path(), out);
    QTRY_VERIFY_WITH_TIMEOUT(run->isLoaded(), 5000);
    QCOMPARE(run->trace().run.backend, std::string("recorded"));
    QCOMPARE(run->trace().run.status, storage::RunStatus::Complete);
    QCOMPARE(run->trace().steps.size(), size_t(2));
    QVERIFY(run->trace().spanCount() > 0);
    // A complete recording closes the dialog.
    QTRY_VERIFY_WITH_TIMEOUT(!window.recordDialog() || !window.recordDialog()->isVisible(), 5000);
#endif
  }

  void aFailedCommandsRunOpensBesideTheError() {
#ifndef MOESCOPE_HAVE_INJECT
    QSKIP("needs the injection library (a CUDA build) to record nvtx_probe's ranges");
#else
    MainWindow window;
    RecordDialog* dialog =
        probeDialog(window, QStringLiteral("0 1 2 1 3"), QStringLiteral("failed.moescope"));
    QVERIFY(dialog);  // nvtx_probe exits 3
    const QString out = dir_.filePath(QStringLiteral("failed.moescope"));
    QSignalSpy finished(dialog->runner(), &RecordRunner::finished);
    DialogCatcher catcher;
    catcher.arm();
    QTest::mouseClick(dialog->recordButton(), Qt::LeftButton);
    QVERIFY(finished.wait(30'000));
    QTRY_VERIFY_WITH_TIMEOUT(catcher.seen, 5000);
    QVERIFY2(catcher.text.startsWith(QStringLiteral("recorded 1 process (rank 0): ")),
             qPrintable(catcher.text));
    QVERIFY2(catcher.text.endsWith(QStringLiteral("(marked failed)")), qPrintable(catcher.text));
    QVERIFY(catcher.details.startsWith(QStringLiteral("The run is open, marked failed.")));
    QCOMPARE(window.runCount(), 1);
    QCOMPARE(window.currentRun()->path(), out);
    QTRY_COMPARE_WITH_TIMEOUT(window.currentRun()->trace().run.status, storage::RunStatus::Failed, 5000);
    QVERIFY(dialog->isVisible());
#endif
  }
};

QTEST_MAIN(RecordDialogTest)
#include "record_dialog_test.moc"
