// File > Import PyTorch Traces: the menu opens the dialog; traces added set a default run file beside
// them; Import runs with its progress bar and opens the run; a failed import keeps the dialog open
// with its reason.
#include "ui/import_dialog.h"

#include <QAction>
#include <QFileInfo>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "tests/ui/test_dialogs.h"
#include "ui/main_window.h"

using namespace moescope::ui;

namespace {
const QString kData = QStringLiteral(MOESCOPE_SOURCE_DIR "/tests/storage/kineto/");
}

class ImportDialogTest : public QObject {
  Q_OBJECT

 private slots:
  void addingTracesProposesARunFile() {
    ImportDialog dialog;
    dialog.addTraces(
        {QStringLiteral("/data/run/rank0.pt.trace.json.gz"), QStringLiteral("/data/run/rank1.json")});
    const ImportSettings s = dialog.settings();
    QCOMPARE(s.traces.size(), 2);
    QCOMPARE(s.output, QStringLiteral("/data/run/rank0.moescope"));
    QCOMPARE(s.pp, 0);  // auto
    QCOMPARE(s.order, QStringLiteral("tp-dp-pp"));
    ImportSettings other = s;
    other.pp = 2;
    other.schedule = QStringLiteral("gpipe");
    other.rules = {QStringLiteral("/data/rules.toml")};
    dialog.setSettings(other);
    QCOMPARE(dialog.settings(), other);
  }

  void importsAndSaysWhichRunToOpen() {
    QTemporaryDir dir;
    ImportDialog dialog;
    ImportSettings s;
    s.traces = {kData + QStringLiteral("pp2-rank0.json"), kData + QStringLiteral("pp2-rank1.json")};
    s.output = dir.filePath(QStringLiteral("pp2.moescope"));
    s.pp = 2;
    dialog.setSettings(s);
    dialog.show();
    QSignalSpy imported(&dialog, &ImportDialog::imported);
    QTest::mouseClick(dialog.importButton(), Qt::LeftButton);
    QVERIFY(imported.wait(20000));
    QCOMPARE(imported.at(0).at(0).toString(), s.output);
    QCOMPARE(dialog.result(), int(QDialog::Accepted));
    QCOMPARE(dialog.progressValue(), 1000);
    QVERIFY(QFileInfo::exists(s.output));
  }

  void aFailureStaysInTheDialog() {
    QTemporaryDir dir;
    ImportDialog dialog;
    ImportSettings s;
    s.traces = {kData + QStringLiteral("pp2-rank0-truncated.json.gz")};
    s.output = dir.filePath(QStringLiteral("x.moescope"));
    dialog.setSettings(s);
    dialog.show();
    QSignalSpy finished(dialog.runner(), &ImportRunner::finished);
    QTest::mouseClick(dialog.importButton(), Qt::LeftButton);
    QVERIFY(finished.wait(20000));
    QVERIFY(dialog.isVisible());
    QVERIFY2(dialog.message().startsWith(QStringLiteral("Import failed: ")), qPrintable(dialog.message()));
    QVERIFY(dialog.message().contains(QStringLiteral("truncated gzip data")));
    QVERIFY(dialog.importButton()->isEnabled());
    QVERIFY(!QFileInfo::exists(s.output));
    // Import with no traces says what is missing and starts nothing.
    dialog.setSettings(ImportSettings{});
    QTest::mouseClick(dialog.importButton(), Qt::LeftButton);
    QCOMPARE(dialog.message(), QStringLiteral("Add the trace files to import (one per rank)."));
    QVERIFY(!dialog.runner()->isRunning());
  }

  void theFileMenuOpensIt() {
    MainWindow window;
    QAction* import = test::menuAction(window, QStringLiteral("Import PyTorch Traces..."));
    QVERIFY(import);
    import->trigger();
    auto* dialog = window.findChild<ImportDialog*>();
    QVERIFY(dialog);
    QVERIFY(dialog->isVisible());
    // An import from there opens its run in the window.
    QTemporaryDir dir;
    ImportSettings s;
    s.traces = {kData + QStringLiteral("pp2-rank0.json"), kData + QStringLiteral("pp2-rank1.json")};
    s.output = dir.filePath(QStringLiteral("pp2.moescope"));
    dialog->setSettings(s);
    QSignalSpy imported(dialog, &ImportDialog::imported);
    QTest::mouseClick(dialog->importButton(), Qt::LeftButton);
    QVERIFY(imported.wait(20000));
    QCOMPARE(window.runCount(), 1);
  }
};

QTEST_MAIN(ImportDialogTest)
#include "import_dialog_test.moc"
