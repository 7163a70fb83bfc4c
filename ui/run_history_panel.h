// The run history: the run files of a folder (by default where new runs go) with their layout and
// headline numbers; double-click or Open shows a run, Compare opens the selected runs (two or more).
#pragma once

#include <QStringList>
#include <QWidget>

class QLineEdit;
class QTableView;

namespace moescope::ui {

class RunHistoryModel;

class RunHistoryPanel : public QWidget {
  Q_OBJECT

 public:
  explicit RunHistoryPanel(const QString& folder, QWidget* parent = nullptr);

  void setFolder(const QString& folder);
  QString folder() const;
  void reload();
  RunHistoryModel* model() const { return model_; }
  QTableView* view() const { return view_; }
  QStringList selectedPaths() const;

 signals:
  void openRequested(const QStringList& paths);
  void compareRequested(const QStringList& paths);

 private:
  RunHistoryModel* model_ = nullptr;
  QTableView* view_ = nullptr;
  QLineEdit* folderEdit_ = nullptr;
};

}  // namespace moescope::ui
