// The main window: a file that will not open is a dialog and the window stays up; a run opens in a
// tab, once, and lands in the recent files; dropped files open.
#include "ui/main_window.h"

#include <QApplication>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QMessageBox>
#include <QMimeData>
#include <QSettings>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>

#include "tests/ui/test_runs.h"
#include "tests/ui/test_traces.h"
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
};

QTEST_MAIN(MainWindowTest)
#include "main_window_test.moc"
