// File > Record: profiles a program with `moescope-cli record` (RecordRunner). The dialog takes the
// command line (program and arguments, a working folder, extra environment lines), the run file and
// record's options; Record checks what can be checked first (recordSettingsProblem: the reason stays
// in the dialog and nothing starts), then runs record and shows the program's output and record's
// `moescope:` lines as they come, with Cancel. A recording that wrote a run says so (recorded(), the
// main window opens it) and, when complete, closes the dialog; one that failed shows record's last
// line in an error dialog and keeps the output in view. The settings are remembered (QSettings) for
// the next recording.
#pragma once

#include <QDialog>

#include "ui/record_runner.h"
#include "ui/record_settings.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace moescope::ui {

class RecordDialog : public QDialog {
  Q_OBJECT

 public:
  // outputFolder: where the run file goes when no earlier recording is remembered.
  explicit RecordDialog(const QString& outputFolder, QWidget* parent = nullptr,
                        const QString& cli = cliPath());

  RecordSettings settings() const;
  void setSettings(const RecordSettings& settings);
  // The one-line status under the output: a refusal, record's latest `moescope:` line, the outcome.
  QString message() const;
  // What the recording printed so far: the program's output and record's lines.
  QString outputText() const;
  QPushButton* recordButton() const { return recordButton_; }
  QPushButton* cancelButton() const { return cancelButton_; }
  RecordRunner* runner() const { return runner_; }

 signals:
  void recorded(const QString& runFile);

 protected:
  void reject() override;  // Cancel/Escape: cancels a recording first

 private:
  void startRecording();
  void onOutput(const QString& line, bool isStderr);
  void onFinished(RecordRunner::Outcome outcome, const QString& message, const QString& runFile);
  void setRunning(bool running);
  void showMessage(const QString& text, bool error);

  QLineEdit *command_ = nullptr, *workingDir_ = nullptr, *output_ = nullptr, *order_ = nullptr,
            *rules_ = nullptr, *steps_ = nullptr;
  QPlainTextEdit* environment_ = nullptr;
  QCheckBox *replace_ = nullptr, *nvtx_ = nullptr, *kernels_ = nullptr;
  QSpinBox *pp_ = nullptr, *tp_ = nullptr, *dp_ = nullptr;
  QComboBox *schedule_ = nullptr, *launchCalls_ = nullptr;
  QWidget* form_ = nullptr;
  QPlainTextEdit* log_ = nullptr;
  QLabel* message_ = nullptr;
  QPushButton *recordButton_ = nullptr, *cancelButton_ = nullptr;
  RecordRunner* runner_ = nullptr;
};

}  // namespace moescope::ui
