// Which runs to compare: the runs open in tabs, checked, and any run file added with Add Files. Two
// runs or more make a comparison.
#pragma once

#include <QDialog>
#include <QStringList>

class QListWidget;
class QPushButton;

namespace moescope::ui {

class ComparePicker : public QDialog {
  Q_OBJECT

 public:
  explicit ComparePicker(const QStringList& openRuns, QWidget* parent = nullptr);

  QStringList chosen() const;
  void addRuns(const QStringList& paths);
  QListWidget* list() const { return list_; }

 private:
  void updateButton();

  QListWidget* list_ = nullptr;
  QPushButton* compare_ = nullptr;
};

}  // namespace moescope::ui
