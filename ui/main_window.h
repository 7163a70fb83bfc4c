// The main window: a tab per open run; File > Open, recent files (QSettings), drag and drop; the
// View menu's navigation (fit, fit to step, go to step, undo zoom, search, collapse). A file that
// will not open is reported in a dialog and the window stays up.
#pragma once

#include <QMainWindow>
#include <QStringList>

#include "ui/run_view.h"

class QMenu;
class QTabWidget;

namespace moescope::ui {

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

  RunViewOptions runViewOptions_;
  QTabWidget* tabs_ = nullptr;
  QMenu* recentMenu_ = nullptr;
};

}  // namespace moescope::ui
