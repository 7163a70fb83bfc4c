// File > Import PyTorch Traces: several trace files (one per rank, .json or .json.gz), the layout the
// job ran with (sizes left at "auto" follow from the traces), the rank order, the schedule, an optional
// rules file and the run file to write; Import runs the import (ImportRunner) with a progress bar and
// Cancel. A failed import keeps the dialog open with its one-line reason; a complete one closes it and
// says which run file to open (imported()).
#pragma once

#include <QDialog>

#include "ui/import_runner.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace moescope::ui {

class ImportDialog : public QDialog {
  Q_OBJECT

 public:
  explicit ImportDialog(QWidget* parent = nullptr);

  ImportSettings settings() const;
  void setSettings(const ImportSettings& settings);
  // Adds trace files; the output defaults to "<first trace's name>.moescope" beside it.
  void addTraces(const QStringList& paths);
  QString message() const;
  QPushButton* importButton() const { return importButton_; }
  QPushButton* cancelButton() const { return cancelButton_; }
  ImportRunner* runner() const { return runner_; }
  int progressValue() const;

 signals:
  void imported(const QString& runFile);

 protected:
  void reject() override;  // Cancel/Escape: stops a running import first

 private:
  void browseTraces();
  void browseOutput();
  void browseRules();
  void startImport();
  void onFinished(ImportRunner::Outcome outcome, const QString& message);
  void setRunning(bool running);

  QListWidget* traces_ = nullptr;
  QLineEdit* output_ = nullptr;
  QSpinBox *pp_ = nullptr, *tp_ = nullptr, *dp_ = nullptr;
  QLineEdit* order_ = nullptr;
  QComboBox* schedule_ = nullptr;
  QLineEdit* rules_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* message_ = nullptr;
  QPushButton *importButton_ = nullptr, *cancelButton_ = nullptr, *addButton_ = nullptr,
              *removeButton_ = nullptr;
  ImportRunner* runner_ = nullptr;
};

}  // namespace moescope::ui
