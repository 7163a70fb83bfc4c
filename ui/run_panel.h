// The bar that follows a run started from the GUI: step, loss and ETA with a progress bar, and
// Cancel; when the run ends, its outcome (a failed run's error in full in the tooltip). Owns the run's
// launcher. It lives in a tool bar, where a widget is shown and hidden through its QAction (the main
// window does that), not with show() and hide().
#pragma once

#include <QWidget>

#include "ui/run_launcher.h"

class QLabel;
class QProgressBar;
class QPushButton;

namespace moescope::ui {

class RunPanel : public QWidget {
  Q_OBJECT

 public:
  explicit RunPanel(QWidget* parent = nullptr, const QString& cli = cliPath());

  RunLauncher* launcher() const { return launcher_; }
  bool start(const RunSettings& settings);
  QString text() const;

 private:
  void showProgress(const StepProgress& p);
  void showFinished(RunLauncher::Outcome outcome, const QString& message);

  RunLauncher* launcher_ = nullptr;
  QProgressBar* bar_ = nullptr;
  QLabel* label_ = nullptr;
  QPushButton* cancel_ = nullptr;
};

}  // namespace moescope::ui
