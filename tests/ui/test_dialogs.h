// Menus and message boxes in tests: a menu's action found by its text; a modal box shown from a slot
// runs its own event loop, so the test closes it from a timer and keeps what it said.
#pragma once

#include <QAction>
#include <QApplication>
#include <QMainWindow>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QTimer>

namespace moescope::ui::test {

// The action of any menu of the window's menu bar whose text, without its '&', is text; or nullptr.
inline QAction* menuAction(const QMainWindow& window, const QString& text) {
  for (QAction* menu : window.menuBar()->actions()) {
    if (!menu->menu()) continue;
    for (QAction* a : menu->menu()->actions()) {
      if (a->text().remove(QLatin1Char('&')) == text) return a;
    }
  }
  return nullptr;
}

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

}  // namespace moescope::ui::test
