// The SQL panel: a read-only query on the run file (storage/query.h) with its rows as a table, a few
// example queries, and the rows exported to CSV. The run file is SQLite; this is Perfetto's query page.
#pragma once

#include <QString>
#include <QWidget>

#include "ui/query_model.h"

class QComboBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QTableView;

namespace moescope::ui {

class QueryView : public QWidget {
  Q_OBJECT

 public:
  explicit QueryView(const QString& runFile, QWidget* parent = nullptr);

  void setSql(const QString& sql);
  QString sql() const;
  // Runs the statement; false (with the reason in status()) when SQLite refuses it.
  bool run();
  QString status() const;
  QueryModel* model() const { return model_; }
  bool exportCsv(const QString& path, QString* error = nullptr) const;

 private:
  QString file_;
  QueryModel* model_ = nullptr;
  QPlainTextEdit* editor_ = nullptr;
  QComboBox* examples_ = nullptr;
  QLabel* status_ = nullptr;
  QPushButton* export_ = nullptr;
};

}  // namespace moescope::ui
