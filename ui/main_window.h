// The main window: a tab per open run; File > Open, recent files (QSettings), drag and drop; the
// View menu's navigation (fit, fit to step, go to step, undo zoom, search, collapse). A file that
// will not open is reported in a dialog and the window stays up. Run > New Run starts a training run
// (RunDialog, RunPanel) and opens its file while it grows; View > Run History lists a folder's runs.
#pragma once

#include <QMainWindow>
#include <QStringList>

#include "ui/run_settings.h"
#include "ui/run_view.h"

class QDockWidget;
class QMenu;
class QTabWidget;
class QToolBar;

namespace moescope::ui {

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
  QStringList recentFiles() const;

  // Run > New Run: the run dialog (window-modal); Run starts the run.
  void newRun();
  // Starts a run of settings (checked by the dialog) and opens its file once it is written.
  bool startRun(const RunSettings& settings);
  RunPanel* runPanel() const { return runPanel_; }
  // Where new runs go, and the history's folder (QSettings; default ~/moescope-runs).
  QString runsFolder() const;
  void setRunsFolder(const QString& folder);
  // View > Run History: the dock with the run files of runsFolder().
  void showRunHistory();
  RunHistoryPanel* runHistory() const { return history_; }

 protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

 private:
  void createMenus();
  void openDialog();
  void closeRun(int index);
  void addRecent(const QString& path);
  void rebuildRecentMenu();
  void goToStep();
  void fitStep();
  void showKeys();
  void openRuns(const QStringList& paths, bool compare);

  RunViewOptions runViewOptions_;
  QTabWidget* tabs_ = nullptr;
  QMenu* recentMenu_ = nullptr;
  RunPanel* runPanel_ = nullptr;
  QToolBar* runBar_ = nullptr;
  QDockWidget* historyDock_ = nullptr;
  RunHistoryPanel* history_ = nullptr;
};

}  // namespace moescope::ui
