#include "ui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QKeySequence>
#include <QLabel>
#include <QLocale>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QToolBar>
#include <exception>

#include "ui/compare_picker.h"
#include "ui/export_actions.h"
#include "ui/import_dialog.h"
#include "ui/record_dialog.h"
#include "ui/run_dialog.h"
#include "ui/run_history_panel.h"
#include "ui/run_panel.h"
#include "ui/run_view.h"
#include "ui/timeline_widget.h"

namespace moescope::ui {
namespace {

constexpr int kMaxRecent = 10;
const char* const kRecentKey = "recentFiles";
const char* const kRunsFolderKey = "runsFolder";

}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(tr("moescope"));
  setAcceptDrops(true);
  resize(1600, 950);
  tabs_ = new QTabWidget(this);
  tabs_->setTabsClosable(true);
  tabs_->setDocumentMode(true);
  setCentralWidget(tabs_);
  connect(tabs_, &QTabWidget::tabCloseRequested, this, &MainWindow::closeRun);
  connect(tabs_, &QTabWidget::currentChanged, this, &MainWindow::updateSpanCount);
  runPanel_ = new RunPanel(this);
  runBar_ = addToolBar(tr("Run"));
  runBar_->setObjectName(QStringLiteral("runBar"));
  // A widget in a tool bar shows and hides through its action: the widget's own show() and hide()
  // are ignored there.
  runBarAction_ = runBar_->addWidget(runPanel_);
  runBarAction_->setVisible(false);
  runBar_->hide();
  RunLauncher* launcher = runPanel_->launcher();
  connect(launcher, &RunLauncher::runFileReady, this, [this](const QString& path) { openRun(path); });
  connect(launcher, &RunLauncher::finished, this, &MainWindow::runFinished);
  spanCount_ = new QLabel(this);
  spanCount_->setObjectName(QStringLiteral("spanCount"));
  statusBar()->addPermanentWidget(spanCount_);
  createMenus();
  connect(launcher, &RunLauncher::started, cancelRun_, [this] { cancelRun_->setEnabled(true); });
  statusBar()->showMessage(tr("Open a run file: File > Open, or drop it on this window"));
}

void MainWindow::createMenus() {
  createFileMenu();
  createViewMenu();
  addAnalysisMenus(  // Analysis, Export
      this, [this] { return currentRun(); }, [this] { compareRuns(); });
  createRunMenu();
  createHelpMenu();
}

void MainWindow::createFileMenu() {
  QMenu* file = fileMenu_ = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Open..."), QKeySequence::Open, this, &MainWindow::openDialog);
  file->addAction(tr("&Import PyTorch Traces..."), this, [this] {
    auto* dialog = new ImportDialog(this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &ImportDialog::imported, this, [this](const QString& path) { openRun(path); });
    dialog->open();
  });
  file->addAction(tr("Re&cord..."), this, &MainWindow::recordProgram);
  recentMenu_ = file->addMenu(tr("Open &Recent"));
  rebuildRecentMenu();
  file->addAction(tr("&Close Run"), QKeySequence::Close, this, [this] {
    if (tabs_->currentIndex() >= 0) closeRun(tabs_->currentIndex());
  });
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, qApp, &QApplication::closeAllWindows);
}

void MainWindow::createViewMenu() {
  auto withTimeline = [this](auto&& f) {
    return [this, f] {
      if (RunView* run = currentRun()) f(run->timeline());
    };
  };
  QMenu* view = viewMenu_ = menuBar()->addMenu(tr("&View"));
  view->addAction(tr("Zoom &In (W, wheel)"), withTimeline([](TimelineWidget* t) { t->zoomBy(1.25); }));
  view->addAction(tr("Zoom &Out (S, wheel)"), withTimeline([](TimelineWidget* t) { t->zoomBy(1 / 1.25); }));
  view->addAction(tr("&Undo Zoom"), QKeySequence::Undo, this,
                  withTimeline([](TimelineWidget* t) { t->undoZoom(); }));
  view->addAction(tr("&Fit All"), QKeySequence(Qt::CTRL | Qt::Key_0), this,
                  withTimeline([](TimelineWidget* t) { t->fitAll(); }));
  view->addAction(tr("Fit Stea&dy Steps (skip the warm-up)"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_0),
                  this, withTimeline([](TimelineWidget* t) { t->fitSteadySteps(); }));
  view->addAction(tr("Fit to &Step"), QKeySequence(Qt::CTRL | Qt::Key_T), this, &MainWindow::fitStep);
  view->addAction(tr("&Go to Step..."), QKeySequence(Qt::CTRL | Qt::Key_J), this, &MainWindow::goToStep);
  view->addAction(tr("Zoom to &Area Selection (Enter)"),
                  withTimeline([](TimelineWidget* t) { t->zoomToArea(); }));
  view->addAction(tr("Clear Area Selection (Esc)"),
                  withTimeline([](TimelineWidget* t) { t->setArea(std::nullopt); }));
  view->addSeparator();
  view->addAction(tr("&Find..."), QKeySequence::Find, this, [this] {
    if (RunView* run = currentRun()) run->focusSearch();
  });
  view->addAction(tr("Find &Next"), QKeySequence::FindNext, this, [this] {
    if (RunView* run = currentRun()) run->findNext(true);
  });
  view->addAction(tr("Find &Previous"), QKeySequence::FindPrevious, this, [this] {
    if (RunView* run = currentRun()) run->findNext(false);
  });
  view->addAction(tr("Search &Results"), this, [this] {
    if (RunView* run = currentRun()) run->showSearchResults();
  });
  view->addSeparator();
  view->addAction(tr("&Collapse All Ranks"),
                  withTimeline([](TimelineWidget* t) { t->setAllCollapsed(true); }));
  view->addAction(tr("&Expand All Ranks"),
                  withTimeline([](TimelineWidget* t) { t->setAllCollapsed(false); }));
  view->addSeparator();
  view->addAction(tr("Run &History"), this, &MainWindow::showRunHistory);
}

void MainWindow::createRunMenu() {
  QMenu* run = menuBar()->addMenu(tr("&Run"));
  run->addAction(tr("&New Run..."), QKeySequence(Qt::CTRL | Qt::Key_R), this, &MainWindow::newRun);
  cancelRun_ = run->addAction(tr("&Cancel Run"), runPanel_->launcher(), &RunLauncher::cancel);
  cancelRun_->setEnabled(false);
}

void MainWindow::createHelpMenu() {
  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&Navigation"), this, &MainWindow::showKeys);
}

void MainWindow::runFinished() {
  cancelRun_->setEnabled(false);
  statusBar()->showMessage(runPanel_->text(), 10000);
  if (history_) history_->reload();
  // The run's tab reads the end of the file and lets go of it (the CLI checkpointed its WAL into it
  // at the finish: the run is one file a user can copy).
  const QString out = QFileInfo(runPanel_->launcher()->settings().out).absoluteFilePath();
  for (int i = 0; i < tabs_->count(); ++i) {
    if (auto* run = qobject_cast<RunView*>(tabs_->widget(i)); run && run->path() == out) run->refresh();
  }
}

void MainWindow::updateSpanCount() {
  RunView* run = currentRun();
  spanCount_->setText(
      run ? tr("%1 spans").arg(QLocale().toString(static_cast<qulonglong>(run->trace().spanCount())))
          : QString());
}

QString MainWindow::spanCountText() const {
  return spanCount_->text();
}

QStringList MainWindow::openRunPaths() const {
  QStringList out;
  for (int i = 0; i < tabs_->count(); ++i) {
    if (auto* run = qobject_cast<RunView*>(tabs_->widget(i))) out << run->path();
  }
  return out;
}

void MainWindow::compareRuns() {
  const QStringList open = openRunPaths();
  QStringList paths;
  if (open.isEmpty()) {
    paths = QFileDialog::getOpenFileNames(this, tr("Compare Runs (two or more)"), QString(),
                                          tr("moescope runs (*.moescope)"));
  } else {
    ComparePicker picker(open, this);
    if (picker.exec() != QDialog::Accepted) return;
    paths = picker.chosen();
  }
  if (paths.size() < 2) {
    if (!paths.isEmpty()) statusBar()->showMessage(tr("Pick two runs or more to compare"), 5000);
    return;
  }
  openCompareWindow(paths, this);
}

RunView* MainWindow::currentRun() const {
  return qobject_cast<RunView*>(tabs_->currentWidget());
}

int MainWindow::runCount() const {
  return tabs_->count();
}

bool MainWindow::openRun(const QString& path) {
  const QString canonical = QFileInfo(path).absoluteFilePath();
  for (int i = 0; i < tabs_->count(); ++i) {
    if (auto* run = qobject_cast<RunView*>(tabs_->widget(i)); run && run->path() == canonical) {
      tabs_->setCurrentIndex(i);
      return true;
    }
  }
  RunView* run = nullptr;
  try {
    run = new RunView(canonical, tabs_, runViewOptions_);
  } catch (const std::exception& e) {
    QMessageBox box(QMessageBox::Critical, tr("Cannot open run"),
                    tr("moescope could not open %1.").arg(QFileInfo(path).fileName()), QMessageBox::Ok, this);
    box.setInformativeText(QString::fromUtf8(e.what()));
    box.exec();
    statusBar()->showMessage(tr("Could not open %1").arg(path));
    return false;
  }
  const int index = tabs_->addTab(run, run->title());
  tabs_->setTabToolTip(index, canonical);
  tabs_->setCurrentIndex(index);
  connect(run, &RunView::statusMessage, this,
          [this](const QString& m) { statusBar()->showMessage(m, 5000); });
  connect(run, &RunView::titleChanged, this, [this, run] {
    const int i = tabs_->indexOf(run);
    if (i >= 0) tabs_->setTabText(i, run->title());
  });
  connect(run, &RunView::contentChanged, this, [this, run] {
    if (run == currentRun()) updateSpanCount();
  });
  addRecent(canonical);
  const QString keys =
      tr("Wheel or W/S zoom, drag or A/D pan, shift-drag selects an area, right-drag zooms "
         "to a range, Backspace undoes.");
  // The span count lives in its own corner of the status bar, kept current as the run grows.
  updateSpanCount();
  if (run->isLoaded()) {
    statusBar()->showMessage(tr("%1 opened. %2").arg(QFileInfo(path).fileName(), keys), 15000);
  } else {
    statusBar()->showMessage(
        tr("%1: showing the first step while the rest loads. %2").arg(QFileInfo(path).fileName(), keys));
    connect(run, &RunView::loaded, this, [this, run] {
      statusBar()->showMessage(tr("%1 loaded").arg(QFileInfo(run->path()).fileName()), 5000);
    });
  }
  run->timeline()->setFocus();
  return true;
}

void MainWindow::openDialog() {
  const QStringList paths = QFileDialog::getOpenFileNames(this, tr("Open run"), QString(),
                                                          tr("moescope runs (*.moescope);;All files (*)"));
  for (const QString& p : paths) openRun(p);
}

void MainWindow::closeRun(int index) {
  QWidget* w = tabs_->widget(index);
  tabs_->removeTab(index);
  delete w;
}

QStringList MainWindow::recentFiles() const {
  return QSettings().value(kRecentKey).toStringList();
}

void MainWindow::addRecent(const QString& path) {
  QSettings settings;
  QStringList recent = settings.value(kRecentKey).toStringList();
  recent.removeAll(path);
  recent.prepend(path);
  while (recent.size() > kMaxRecent) recent.removeLast();
  settings.setValue(kRecentKey, recent);
  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  recentMenu_->clear();
  const QStringList recent = recentFiles();
  for (const QString& path : recent) {
    recentMenu_->addAction(QFileInfo(path).fileName() + QStringLiteral("  —  ") + path, this,
                           [this, path] { openRun(path); });
  }
  recentMenu_->setEnabled(!recent.isEmpty());
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  for (const QUrl& url : event->mimeData()->urls()) {
    if (url.isLocalFile()) openRun(url.toLocalFile());
  }
  event->acceptProposedAction();
}

void MainWindow::goToStep() {
  RunView* run = currentRun();
  if (!run) return;
  const auto& steps = run->trace().steps;
  if (steps.empty()) {
    statusBar()->showMessage(tr("This run has no steps"), 5000);
    return;
  }
  bool ok = false;
  const int step =
      QInputDialog::getInt(this, tr("Go to step"), tr("Step:"), run->timeline()->stepAtCenter().value_or(0),
                           steps.front().step, steps.back().step, 1, &ok);
  if (ok && !run->timeline()->fitStep(step)) statusBar()->showMessage(tr("No step %1").arg(step), 5000);
}

void MainWindow::fitStep() {
  RunView* run = currentRun();
  if (!run) return;
  if (auto step = run->timeline()->stepAtCenter()) run->timeline()->fitStep(*step);
}

QString MainWindow::runsFolder() const {
  return QSettings().value(kRunsFolderKey, QDir::home().filePath(QStringLiteral("moescope-runs"))).toString();
}

void MainWindow::setRunsFolder(const QString& folder) {
  QSettings().setValue(kRunsFolderKey, folder);
}

void MainWindow::newRun() {
  if (runPanel_->launcher()->isRunning()) {
    statusBar()->showMessage(tr("A run is going; cancel it (Run > Cancel Run) before starting another"),
                             5000);
    return;
  }
  auto* dialog = new RunDialog(runsFolder(), this, cliPath(), schema_);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  connect(dialog, &QDialog::accepted, this, [this, dialog] { startRun(dialog->settings()); });
  dialog->open();
}

void MainWindow::closeRunFile(const QString& path) {
  const QString canonical = QFileInfo(path).absoluteFilePath();
  for (int i = tabs_->count() - 1; i >= 0; --i) {
    if (auto* run = qobject_cast<RunView*>(tabs_->widget(i)); run && run->path() == canonical) closeRun(i);
  }
}

RecordDialog* MainWindow::recordDialog() const {
  return recordDialog_;
}

void MainWindow::recordProgram() {
  // Not modal: a recording lasts as long as the job, and the window's runs stay in reach meanwhile.
  if (!recordDialog_) {
    recordDialog_ = new RecordDialog(runsFolder(), this);
    recordDialog_->setAttribute(Qt::WA_DeleteOnClose);
    connect(recordDialog_, &RecordDialog::recorded, this, [this](const QString& path) {
      closeRunFile(path);  // a tab of the file it replaced shows the old run
      openRun(path);
    });
  }
  recordDialog_->show();
  recordDialog_->raise();
  recordDialog_->activateWindow();
}

bool MainWindow::startRun(const RunSettings& settings) {
  if (runPanel_->launcher()->isRunning()) return false;
  // The run replaces its file: a tab showing the old one goes.
  closeRunFile(settings.out);
  setRunsFolder(QFileInfo(settings.out).absolutePath());
  runBar_->show();
  runBarAction_->setVisible(true);
  if (!runPanel_->start(settings)) {
    statusBar()->showMessage(
        runPanel_->launcher()->isRunning() ? tr("A run is going already") : runPanel_->text(), 5000);
    return false;
  }
  if (history_ && history_->folder() != runsFolder()) history_->setFolder(runsFolder());
  return true;
}

void MainWindow::showRunHistory() {
  if (!historyDock_) {
    historyDock_ = new QDockWidget(tr("Run history"), this);
    historyDock_->setObjectName(QStringLiteral("runHistory"));
    history_ = new RunHistoryPanel(runsFolder(), historyDock_);
    historyDock_->setWidget(history_);
    addDockWidget(Qt::BottomDockWidgetArea, historyDock_);
    connect(history_, &RunHistoryPanel::openRequested, this,
            [this](const QStringList& p) { openRuns(p, false); });
    connect(history_, &RunHistoryPanel::compareRequested, this,
            [this](const QStringList& p) { openRuns(p, true); });
  } else {
    history_->reload();
  }
  historyDock_->show();
  historyDock_->raise();
}

void MainWindow::openRuns(const QStringList& paths, bool compare) {
  if (compare) {
    openCompareWindow(paths, this);
    return;
  }
  for (const QString& path : paths) openRun(path);
}

void MainWindow::showKeys() {
  QMessageBox::information(
      this, tr("Navigation"),
      tr("<table>"
         "<tr><td><b>Wheel, W / S</b></td><td>zoom in / out around the pointer</td></tr>"
         "<tr><td><b>Drag, A / D, arrows</b></td><td>pan (dragging also scrolls the rows)</td></tr>"
         "<tr><td><b>Shift+wheel</b></td><td>scroll the rows</td></tr>"
         "<tr><td><b>Shift-drag</b></td><td>select an area: a time range over the rows dragged across, "
         "summed in the Selection panel</td></tr>"
         "<tr><td><b>Enter, Esc</b></td><td>zoom to the area selection, clear it</td></tr>"
         "<tr><td><b>Right-drag</b></td><td>zoom to the dragged range</td></tr>"
         "<tr><td><b>Double-click</b></td><td>zoom to a span</td></tr>"
         "<tr><td><b>Shift+F, Ctrl+Shift+0</b></td><td>fit the steady steps (all but the warm-up)</td></tr>"
         "<tr><td><b>Drag the labels' edge</b></td><td>widen or narrow the label column</td></tr>"
         "<tr><td><b>Backspace, Ctrl+Z</b></td><td>undo zoom</td></tr>"
         "<tr><td><b>Ctrl+0</b></td><td>fit all</td></tr>"
         "<tr><td><b>Ctrl+T / Ctrl+J</b></td><td>fit to the step in view / go to (jump to) step N</td></tr>"
         "<tr><td><b>Click</b></td><td>select a span and draw its flows (launch to kernel, send to "
         "receive); on a rank's header: collapse or expand it</td></tr>"
         "<tr><td><b>Ctrl+F, F3, Shift+F3</b></td><td>search by name, next, previous</td></tr>"
         "</table>"));
}

}  // namespace moescope::ui
