// The main window: a file that will not open is a dialog and the window stays up; a run opens in a
// tab, once, and lands in the recent files; a run that is still being written grows on refresh.
#include <QApplication>
#include <QFile>
#include <QMessageBox>
#include <QMimeData>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QSettings>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>

#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"
#include "ui/main_window.h"
#include "ui/run_view.h"
#include "ui/timeline_widget.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

namespace {

// Closes the next modal message box as soon as it shows, keeping its texts.
struct DialogCatcher {
  QString title, text, details;
  bool seen = false;
  void arm() {
    QTimer::singleShot(20, [this] { poll(); });
  }
  void poll() {
    if (auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget())) {
      title = box->windowTitle();
      text = box->text();
      details = box->informativeText();
      seen = true;
      box->done(QMessageBox::Ok);
      return;
    }
    QTimer::singleShot(20, [this] { poll(); });
  }
};

}  // namespace

class MainWindowTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

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
    const QString path = dir_.filePath(QStringLiteral("bad-%1.moescope").arg(QTest::currentDataTag()).replace(' ', '-'));
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
    test::writeRun(path.toStdString(), test::makeTrace(2, {{0, 0, 1000}, {1, 500, 1500, Category::ComputeExpert}}));
    MainWindow window;
    window.show();
    QVERIFY(window.openRun(path));
    QVERIFY(window.openRun(path));
    QCOMPARE(window.runCount(), 1);
    QVERIFY(window.currentRun());
    QCOMPARE(window.currentRun()->trace().spanCount(), size_t(2));
    QVERIFY2(window.currentRun()->bubbleText().startsWith(QStringLiteral("bubbles: stage 0 ")),
             qPrintable(window.currentRun()->bubbleText()));
    QCOMPARE(window.recentFiles().value(0), QFileInfo(path).absoluteFilePath());
  }

  void droppedFilesOpen() {
    const QString a = dir_.filePath(QStringLiteral("drop-a.moescope")), b = dir_.filePath(QStringLiteral("drop-b.moescope"));
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

  void aRunningRunGrowsOnRefresh() {
    const QString path = dir_.filePath(QStringLiteral("live.moescope"));
    auto trace = test::makeTrace(1, {{0, 0, 1000}});
    auto writer = test::writeRun(path.toStdString(), trace, storage::RunStatus::Running);
    MainWindow window;
    window.show();
    QVERIFY(window.openRun(path));
    RunView* run = window.currentRun();
    QVERIFY(run->isLive());
    QVERIFY(run->title().contains(QStringLiteral("running")));

    storage::SpanRecord more;
    more.start = 2000;
    more.end = 3000;
    more.category = Category::ComputeExpert;
    writer->addSpans({&more, 1});
    writer->commit();
    QVERIFY(run->refresh());
    QCOMPARE(run->trace().spanCount(), size_t(2));
    QVERIFY(run->timeline()->extent().end >= 3000);

    writer->setStatus(storage::RunStatus::Complete, "", 3000);
    writer->commit();
    run->refresh();
    QVERIFY(!run->isLive());
  }

  void aLargeRunShowsItsFirstStepThenTheRest() {
    // Three steps of 1 ms, a span in each; loaded progressively whatever its size.
    auto trace = test::makeTrace(1, {{0, 100, 900}, {0, 1100, 1900}, {0, 2100, 2900}});
    for (int s = 0; s < 3; ++s) {
      storage::StepMetric m;
      m.step = s;
      m.start_ns = s * 1000;
      m.end_ns = s * 1000 + 1000;
      trace.steps.push_back(m);
    }
    const QString path = dir_.filePath(QStringLiteral("large.moescope"));
    test::writeRun(path.toStdString(), trace);
    MainWindow window;
    window.setRunViewOptions({.progressiveBytes = 0});
    window.show();
    QVERIFY(window.openRun(path));
    RunView* run = window.currentRun();
    if (!run->isLoaded()) {
      QCOMPARE(run->trace().spanCount(), size_t(1));  // the first step only
      QSignalSpy loaded(run, &RunView::loaded);
      QVERIFY(loaded.wait(10'000));
    }
    QVERIFY(run->isLoaded());
    QCOMPARE(run->trace().spanCount(), size_t(3));
    QCOMPARE(run->timeline()->visibleRange(), run->timeline()->extent());  // untouched: shows it all
  }
};

QTEST_MAIN(MainWindowTest)
#include "main_window_test.moc"
