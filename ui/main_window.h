// The main window: a tab per open run; File > Open, recent files (QSettings), drag and drop; File >
// Import (PyTorch traces) and File > Record (a program profiled with `moescope-cli record`); the View
// menu's navigation (fit, fit the steady steps, fit to step, go to step, undo zoom, search, collapse);
// Analysis (breakdown, selection, SQL, compare) and Export; Run > New Run starts a training run
// (RunDialog, RunPanel) and opens its file while it grows; View > Run History lists a folder's runs. A
// file that will not open is reported in a dialog and the window stays up. The status bar keeps the
// current run's span count.
//
// Menus are made in menu-bar order by one function each (createMenus); a module that adds to a menu
// (File > Import, say) gets it from fileMenu() and friends.
#pragma once

#include <QMainWindow>
#include <QPointer>
#include <QStringList>
#include <optional>

#include "ui/run_settings.h"
#include "ui/run_view.h"

class QAction;
class QDockWidget;
class QLabel;
class QMenu;
class QTabWidget;
class QToolBar;

namespace moescope::ui {

class RecordDialog;
class RunHistoryPanel;
class RunPanel;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);

  // Opens path in a new tab (or shows its tab if it is open); on failure shows an error dialog and
  // returns false.
  bool openRun(const QString& path);
  RunView* currentRun() const;
  // How runs opened from now on load (see RunView).
  void setRunViewOptions(const RunViewOptions& options) { runViewOptions_ = options; }
  int runCount() const;
  QStringList openRunPaths() const;
  QStringList recentFiles() const;

  // Run > New Run: the run dialog (window-modal); Run starts the run.
  void newRun();
  // The config schema the run dialog is built from; read from `moescope-cli config --json` when not set.
  void setConfigSchema(std::optional<ConfigSchema> schema) { schema_ = std::move(schema); }
  // File > Record: the record dialog (one, not modal); the run it records opens here.
  void recordProgram();
  RecordDialog* recordDialog() const;
  // Starts a run of settings (checked by the dialog) and opens its file once it is written.
  bool startRun(const RunSettings& settings);
  RunPanel* runPanel() const { return runPanel_; }
  // The run bar's action in its tool bar: visible while a run launched here is shown.
  QAction* runBarAction() const { return runBarAction_; }
  QAction* cancelRunAction() const { return cancelRun_; }
  // Where new runs go, and the history's folder (QSettings; default ~/moescope-runs).
  QString runsFolder() const;
  void setRunsFolder(const QString& folder);
  // View > Run History: the dock with the run files of runsFolder().
  void showRunHistory();
  RunHistoryPanel* runHistory() const { return history_; }
  // Analysis > Compare Runs: the runs open in tabs (and files added) in a compare window.
  void compareRuns();
  // The status bar's span count of the current run.
  QString spanCountText() const;

  QMenu* fileMenu() const { return fileMenu_; }
  QMenu* viewMenu() const { return viewMenu_; }

 protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

 private:
  void createMenus();
  void createFileMenu();
  void createViewMenu();
  void createRunMenu();
  void createHelpMenu();
  void openDialog();
  void closeRun(int index);
  void closeRunFile(const QString& path);  // the tab showing that file, if any
  void addRecent(const QString& path);
  void rebuildRecentMenu();
  void goToStep();
  void fitStep();
  void showKeys();
  void openRuns(const QStringList& paths, bool compare);
  void updateSpanCount();
  void runFinished();

  RunViewOptions runViewOptions_;
  std::optional<ConfigSchema> schema_;
  QTabWidget* tabs_ = nullptr;
  QMenu* fileMenu_ = nullptr;
  QMenu* viewMenu_ = nullptr;
  QMenu* recentMenu_ = nullptr;
  RunPanel* runPanel_ = nullptr;
  QToolBar* runBar_ = nullptr;
  QAction* runBarAction_ = nullptr;
  QAction* cancelRun_ = nullptr;
  QLabel* spanCount_ = nullptr;
  QDockWidget* historyDock_ = nullptr;
  RunHistoryPanel* history_ = nullptr;
  QPointer<RecordDialog> recordDialog_;
};

}  // namespace moescope::ui
