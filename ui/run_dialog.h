// The New Run dialog: a preset from samples/, then the model size, layout, parallel sizes, MoE
// settings, schedule, steps, backend (cuda disabled, with the CLI's reason, where it cannot run) and
// the output file. Run checks the settings with `moescope-cli train --dry-run` (the CLI's own rules)
// and accepts only when they pass; otherwise the reason stays in the dialog and nothing starts.
#pragma once

#include <QDialog>

#include "ui/run_settings.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace moescope::ui {

class RunDialog : public QDialog {
  Q_OBJECT

 public:
  // outputFolder: where a new run file goes by default (created if missing).
  explicit RunDialog(const QString& outputFolder, QWidget* parent = nullptr, const QString& cli = cliPath());

  RunSettings settings() const;
  void setSettings(const RunSettings& settings);
  // Runs the CLI's check; shows its message; returns whether the run may start.
  bool check();
  QString message() const;
  QPushButton* runButton() const { return runButton_; }

 private:
  void loadPresetAt(int index);
  void updateEnabled();
  void browseOutput();
  QString defaultOutput(const QString& layout) const;
  void tryAccept();

  QString cli_;
  QString outputFolder_;
  QComboBox* preset_ = nullptr;
  QSpinBox *vocab_ = nullptr, *seq_ = nullptr, *dModel_ = nullptr, *layers_ = nullptr, *heads_ = nullptr,
           *dFf_ = nullptr;
  QComboBox* layout_ = nullptr;
  QSpinBox *experts_ = nullptr, *topK_ = nullptr;
  QDoubleSpinBox* capacity_ = nullptr;
  QSpinBox *pp_ = nullptr, *tp_ = nullptr, *dp_ = nullptr, *micro_ = nullptr, *batch_ = nullptr;
  QComboBox* schedule_ = nullptr;
  QSpinBox* steps_ = nullptr;
  QComboBox* backend_ = nullptr;
  QLabel* backendNote_ = nullptr;
  QLineEdit* out_ = nullptr;
  QLabel* message_ = nullptr;
  QPushButton* runButton_ = nullptr;
  QString presetPath_;
  QString lastDefaultOut_;
};

}  // namespace moescope::ui
