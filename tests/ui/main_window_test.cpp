// The main window: a file that will not open is a dialog and the window stays up; a run opens in a
// tab, once, and lands in the recent files; dropped files open; the menus are in the usual order; the
// status bar's span count follows a growing run; Compare Runs offers the runs open in tabs and opens
// with its timelines in view; a click on a legend label toggles it and empty categories are not listed;
// the breakdown's headers are not cut.
#include "ui/main_window.h"

#include <QApplication>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileInfo>
#include <QHeaderView>
#include <QListView>
#include <QListWidget>
#include <QMenuBar>
#include <QMimeData>
#include <QScrollArea>
#include <QSettings>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>

#include "storage/run_reader.h"
#include "tests/ui/test_dialogs.h"
#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"
#include "ui/breakdown_view.h"
#include "ui/compare_picker.h"
#include "ui/compare_view.h"
#include "ui/legend_model.h"
#include "ui/run_view.h"
#include "ui/timeline_palette.h"
#include "ui/timeline_widget.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

using test::DialogCatcher;

class MainWindowTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

  // A two-rank run (attention on rank 0, a tp all-reduce on rank 1) open in a 1600 x 900 window with
  // its breakdown shown.
  bool openTwoRanksWithBreakdown(MainWindow& window, const QString& name) {
    const QString path = dir_.filePath(name);
    test::writeRun(path.toStdString(), test::makeTrace(2, {{0, 0, 1000, Category::ComputeAttention},
                                                           {1, 0, 1000, Category::CommTpAllreduce}}));
    window.resize(1600, 900);
    window.show();
    if (!window.openRun(path)) return false;
    window.currentRun()->setBreakdownVisible(true);
    QTest::qWait(50);
    return true;
  }

 private slots:
  void initTestCase() {
    QCoreApplication::setOrganizationName(QStringLiteral("moescope-tests"));
    QCoreApplication::setApplicationName(QStringLiteral("main_window_test"));
    QSettings().clear();
  }

  void corruptFileIsADialog_data() {
    QTest::addColumn<QByteArray>("content");
    QTest::newRow("not SQLite") << QByteArray("this is not a run file\n");
    QByteArray header("SQLite format 3");
    header.append('\0');
    header.append(QByteArray(4000, '\x5a'));
    QTest::newRow("corrupt SQLite") << header;
    QTest::newRow("empty") << QByteArray();
  }
  void corruptFileIsADialog() {
    QFETCH(QByteArray, content);
    const QString path =
        dir_.filePath(QStringLiteral("bad-%1.moescope").arg(QTest::currentDataTag()).replace(' ', '-'));
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(content);
    f.close();

    MainWindow window;
    window.show();
    DialogCatcher catcher;
    catcher.arm();
    QVERIFY(!window.openRun(path));
    QVERIFY(catcher.seen);
    QCOMPARE(catcher.title, QString("Cannot open run"));
    QVERIFY2(catcher.text.contains(QFileInfo(path).fileName()), qPrintable(catcher.text));
    QVERIFY(!catcher.details.isEmpty());
    QCOMPARE(window.runCount(), 0);
    QVERIFY(window.isVisible());
  }

  void missingFileIsADialog() {
    MainWindow window;
    window.show();
    DialogCatcher catcher;
    catcher.arm();
    QVERIFY(!window.openRun(dir_.filePath(QStringLiteral("nothing-here.moescope"))));
    QVERIFY(catcher.seen);
    QCOMPARE(window.runCount(), 0);
  }

  void runOpensOnceAndIsRecent() {
    const QString path = dir_.filePath(QStringLiteral("good.moescope"));
    test::writeRun(path.toStdString(),
                   test::makeTrace(2, {{0, 0, 1000}, {1, 500, 1500, Category::ComputeExpert}}));
    MainWindow window;
    window.show();
    QVERIFY(window.openRun(path));
    QVERIFY(window.openRun(path));
    QCOMPARE(window.runCount(), 1);
    QVERIFY(window.currentRun());
    QCOMPARE(window.currentRun()->trace().spanCount(), size_t(2));
    QCOMPARE(window.recentFiles().value(0), QFileInfo(path).absoluteFilePath());
  }

  void droppedFilesOpen() {
    const QString a = dir_.filePath(QStringLiteral("drop-a.moescope")),
                  b = dir_.filePath(QStringLiteral("drop-b.moescope"));
    test::writeRun(a.toStdString(), test::makeTrace(1, {{0, 0, 1000}}));
    test::writeRun(b.toStdString(), test::makeTrace(1, {{0, 0, 2000}}));
    MainWindow window;
    window.show();
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(a), QUrl::fromLocalFile(b)});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&window, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&window, &drop);
    QCOMPARE(window.runCount(), 2);
  }

  void menusInTheUsualOrder() {
    MainWindow window;
    QStringList titles;
    for (QAction* a : window.menuBar()->actions()) titles << a->text().remove(QLatin1Char('&'));
    QCOMPARE(titles, (QStringList{"File", "View", "Analysis", "Export", "Run", "Help"}));
    QVERIFY(window.fileMenu());
  }

  void theSpanCountFollowsAGrowingRun() {
    const QString path = dir_.filePath(QStringLiteral("growing.moescope"));
    auto writer =
        test::writeRun(path.toStdString(), test::makeTrace(1, {{0, 0, 1000}}), storage::RunStatus::Running);
    MainWindow window;
    window.show();
    QVERIFY(window.openRun(path));
    QCOMPARE(window.spanCountText(), QString("1 spans"));
    std::vector<storage::SpanRecord> more(4);
    for (size_t i = 0; i < more.size(); ++i) {
      more[i].start = 2000 + int64_t(i) * 1000;
      more[i].end = more[i].start + 500;
    }
    writer->addSpans(more);
    writer->commit();
    QVERIFY(window.currentRun()->refresh());
    QCOMPARE(window.spanCountText(), QString("5 spans"));
    writer->setStatus(storage::RunStatus::Complete, "", 6000);
    writer.reset();
    window.currentRun()->refresh();
    // The run ended: its writer moved every page into the file (an empty -wal may stay, as the tab had
    // it open), so a copy of the file alone holds the run.
    const QFileInfo wal(path + QStringLiteral("-wal"));
    QVERIFY(!wal.exists() || wal.size() == 0);
    const QString copy = dir_.filePath(QStringLiteral("growing-copy.moescope"));
    QVERIFY(QFile::copy(path, copy));
    QCOMPARE(storage::RunReader::open(copy.toStdString())->load().spanCount(), size_t(5));
  }

  void compareOffersTheOpenRunsAndShowsTheirTimelines() {
    const QString a = dir_.filePath(QStringLiteral("cmp-a.moescope")),
                  b = dir_.filePath(QStringLiteral("cmp-b.moescope"));
    test::writeRun(a.toStdString(), test::makeTrace(2, {{0, 0, 1000}, {1, 0, 800, Category::ComputeExpert}}));
    test::writeRun(b.toStdString(),
                   test::makeTrace(2, {{0, 0, 900}, {1, 100, 700, Category::CommEpAlltoall}}));
    MainWindow window;
    window.show();
    QVERIFY(window.openRun(a));
    QVERIFY(window.openRun(b));
    // The picker lists both open runs, checked; Compare opens them.
    QStringList listed;
    QTimer::singleShot(50, [&] {
      auto* picker = qobject_cast<ComparePicker*>(QApplication::activeModalWidget());
      if (!picker) return;
      listed = picker->chosen();
      picker->accept();
    });
    window.compareRuns();
    QCOMPARE(listed, (QStringList{QFileInfo(a).absoluteFilePath(), QFileInfo(b).absoluteFilePath()}));
    CompareView* compare = nullptr;
    for (QWidget* w : QApplication::topLevelWidgets()) {
      if (auto* c = w->findChild<CompareView*>(); c && w->isVisible()) compare = c;
    }
    QVERIFY(compare);
    QCOMPARE(compare->runCount(), size_t(2));
    QTest::qWait(50);
    // Not squeezed to nothing: the timelines' scroll area is as tall as their picture or at least 200 px.
    auto* scroll = compare->findChild<QScrollArea*>();
    QVERIFY(scroll);
    QVERIFY2(scroll->height() >= std::min(scroll->widget()->minimumHeight(), 200),
             qPrintable(QString::number(scroll->height())));
    compare->window()->close();
  }

  void aLegendLabelClickTogglesAndEmptyCategoriesAreNotListed() {
    const QString path = dir_.filePath(QStringLiteral("legend.moescope"));
    test::writeRun(path.toStdString(),
                   test::makeTrace(1, {{0, 0, 1000}, {0, 1000, 2000, Category::ComputeExpert}}));
    MainWindow window;
    window.resize(1600, 900);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QVERIFY(window.openRun(path));
    auto* legend = window.currentRun()->findChild<QListView*>(QStringLiteral("legend"));
    QVERIFY(legend);
    auto* model = qobject_cast<LegendModel*>(legend->model());
    int shown = 0;
    for (int row = 0; row < model->rowCount(); ++row) shown += legend->isRowHidden(row) ? 0 : 1;
    QCOMPARE(shown, 2);  // attention and expert: the other twelve have no span
    QVERIFY(legend->isRowHidden(int(Category::Wait)));
    // A click on the label (right of the check box) hides expert; a second shows it again.
    const QModelIndex expert = model->index(int(Category::ComputeExpert));
    const QRect r = legend->visualRect(expert);
    const QPoint onLabel(r.left() + r.width() / 2, r.center().y());
    QTest::mouseClick(legend->viewport(), Qt::LeftButton, {}, onLabel);
    QVERIFY(model->hidden().test(size_t(Category::ComputeExpert)));
    QTest::qWait(QApplication::doubleClickInterval() + 50);
    QTest::mouseClick(legend->viewport(), Qt::LeftButton, {}, onLabel);
    QVERIFY(!model->hidden().test(size_t(Category::ComputeExpert)));
  }

  void theBreakdownsHeadersAreNotCut() {
    MainWindow window;
    QVERIFY(openTwoRanksWithBreakdown(window, QStringLiteral("breakdown.moescope")));
    auto* table = window.currentRun()->breakdown()->findChild<QTableView*>();
    QVERIFY(table);
    const QFontMetrics fm(table->horizontalHeader()->font());
    for (int c = 0; c + 1 < table->model()->columnCount(); ++c) {
      const QString text = table->model()->headerData(c, Qt::Horizontal).toString();
      QVERIFY2(table->horizontalHeader()->sectionSize(c) >= fm.horizontalAdvance(text), qPrintable(text));
    }
  }

  // The breakdown's chart has room for every stage's bar (issue 17's item 8: a ~60 px strip showed one
  // stage): what the chart's viewport shows holds both stages' bars (and their ranks'), each far wider
  // than its legend swatch (12 x 12 px); the communication table below may scroll.
  void theBreakdownChartShowsEveryStage() {
    MainWindow window;
    QVERIFY(openTwoRanksWithBreakdown(window, QStringLiteral("chart.moescope")));
    auto* scroll = window.currentRun()->breakdown()->findChild<QScrollArea*>();
    QVERIFY(scroll && scroll->widget());
    QVERIFY2(scroll->viewport()->height() >= 200, qPrintable(QString::number(scroll->viewport()->height())));
    const QImage shown = scroll->viewport()->grab().toImage();
    auto pixels = [&](Category c) {
      const QColor colour = categoryColor(c);
      int n = 0;
      for (int y = 0; y < shown.height(); ++y)
        for (int x = 0; x < shown.width(); ++x) n += shown.pixelColor(x, y) == colour ? 1 : 0;
      return n;
    };
    // Stage 0 computes attention, stage 1 all-reduces: a stage's bar and its rank's, each 12+ px tall.
    QVERIFY2(pixels(Category::ComputeAttention) > 4 * 144,
             qPrintable(QString::number(pixels(Category::ComputeAttention))));
    QVERIFY2(pixels(Category::CommTpAllreduce) > 4 * 144,
             qPrintable(QString::number(pixels(Category::CommTpAllreduce))));
  }
};

QTEST_MAIN(MainWindowTest)
#include "main_window_test.moc"
