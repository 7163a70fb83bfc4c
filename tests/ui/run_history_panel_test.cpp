// The run history in the main window: View > Run History lists the runs folder's files; Compare is
// there for two or more selected runs and opens them in the compare view; Open shows one in a tab.
#include "ui/run_history_panel.h"

#include <QDockWidget>
#include <QItemSelectionModel>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>

#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"
#include "ui/compare_view.h"
#include "ui/main_window.h"
#include "ui/run_history_model.h"

using namespace moescope;
using namespace moescope::ui;

namespace {

QPushButton* button(QWidget* parent, const QString& text) {
  for (auto* b : parent->findChildren<QPushButton*>()) {
    if (b->text().remove(QLatin1Char('&')) == text) return b;
  }
  return nullptr;
}

}  // namespace

class RunHistoryPanelTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

 private slots:
  void initTestCase() {
    QCoreApplication::setOrganizationName(QStringLiteral("moescope-tests"));
    QCoreApplication::setApplicationName(QStringLiteral("run_history_panel_test"));
    QSettings().clear();
  }

  void compareOpensTheSelectedRuns() {
    for (const char* name : {"a.moescope", "b.moescope", "c.moescope"}) {
      test::writeRun(dir_.filePath(QLatin1String(name)).toStdString(), test::makeTrace(1, {{0, 0, 1000}}));
    }
    MainWindow window;
    window.setRunsFolder(dir_.path());
    window.show();
    window.showRunHistory();
    RunHistoryPanel* history = window.runHistory();
    QVERIFY(history);
    QVERIFY(window.findChild<QDockWidget*>(QStringLiteral("runHistory"))->isVisible());
    QCOMPARE(history->folder(), dir_.path());
    QCOMPARE(history->model()->rowCount(), 3);

    QPushButton* compare = button(history, QStringLiteral("Compare"));
    QPushButton* open = button(history, QStringLiteral("Open"));
    QVERIFY(compare && open);
    QVERIFY(!compare->isEnabled());
    QTableView* view = history->view();
    view->selectRow(0);
    QVERIFY(!compare->isEnabled());
    view->selectionModel()->select(history->model()->index(2, 0),
                                   QItemSelectionModel::Select | QItemSelectionModel::Rows);
    QVERIFY(compare->isEnabled());
    QCOMPARE(history->selectedPaths().size(), 2);

    QSignalSpy compared(history, &RunHistoryPanel::compareRequested);
    QTest::mouseClick(compare, Qt::LeftButton);
    QCOMPARE(compared.size(), 1);
    QCOMPARE(compared.at(0).at(0).toStringList(), history->selectedPaths());
    auto* compareView = window.findChild<CompareView*>();  // in its own window
    QVERIFY(compareView);
    QCOMPARE(compareView->runCount(), size_t(2));
    QCOMPARE(window.runCount(), 0);

    view->selectRow(1);
    QSignalSpy opened(history, &RunHistoryPanel::openRequested);
    QTest::mouseClick(open, Qt::LeftButton);
    QCOMPARE(opened.size(), 1);
    QCOMPARE(opened.at(0).at(0).toStringList(), QStringList{history->model()->entry(1).path});
    QCOMPARE(window.runCount(), 1);
  }
};

QTEST_MAIN(RunHistoryPanelTest)
#include "run_history_panel_test.moc"
