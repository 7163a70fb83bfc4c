// The New Run dialog: a preset, then a field for every key of the run configuration, grouped by its
// section (model, parallel, train, ...), built from the schema `moescope-cli config --json` prints
// (its types, defaults, limits, choices and docs as tooltips), then the backend (cuda disabled, with
// the CLI's reason for these settings, where it cannot run) and the output file. Run checks the
// settings with `moescope-cli train --dry-run` (the CLI's own rules) and accepts only when they pass;
// otherwise the reason stays in the dialog and nothing starts. A passing check shows the schedule's
// theoretical bubble (its passes per stage in the tooltip). The schedules are the choices the schema
// lists (gpipe, 1f1b, interleaved, zb-h1); parallel.virtual_stages is editable only with interleaved,
// the one schedule that takes more than 1.
#pragma once

#include <QDialog>
#include <QHash>
#include <optional>

#include "ui/config_schema.h"
#include "ui/run_settings.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QTimer;

namespace moescope::ui {

class RunDialog : public QDialog {
  Q_OBJECT

 public:
  // outputFolder: where a new run file goes by default (created if missing). schema: the config
  // schema (tests give a fixture); read from `cli config --json` when not given.
  explicit RunDialog(const QString& outputFolder, QWidget* parent = nullptr, const QString& cli = cliPath(),
                     std::optional<ConfigSchema> schema = std::nullopt);

  RunSettings settings() const;
  void setSettings(const RunSettings& settings);
  // Sets one key's field (as the user would); false for an unknown key or a value its field refuses.
  bool setValue(const QString& key, const QVariant& value);
  // The field of a key (its object name is the key), or nullptr.
  QWidget* field(const QString& key) const;
  // Runs the CLI's check; shows its message; returns whether the run may start.
  bool check();
  QString message() const;
  // The backend note: why cuda cannot run these settings here, or empty.
  QString backendNote() const;
  QPushButton* runButton() const { return runButton_; }
  bool hasSchema() const { return schema_.has_value(); }

 private:
  void buildFields();
  void loadPresetAt(int index);
  void updateBackendNote();
  // Enables parallel.virtual_stages for the interleaved schedule; sets it to 1 for the others.
  void followSchedule(const QString& schedule);
  void browseOutput();
  QString defaultOutput() const;
  void tryAccept();
  QVariant valueOf(const ConfigKey& key) const;

  QString cli_;
  QString outputFolder_;
  std::optional<ConfigSchema> schema_;
  QComboBox* preset_ = nullptr;
  QHash<QString, QWidget*> fields_;
  QComboBox* backend_ = nullptr;
  QLabel* backendNote_ = nullptr;
  QLineEdit* out_ = nullptr;
  QLabel* message_ = nullptr;
  QPushButton* runButton_ = nullptr;
  QTimer* noteTimer_ = nullptr;
  QString presetPath_;
  QString lastDefaultOut_;
  QString cudaReason_;  // why cuda cannot run the CLI's defaults here; empty when it can
};

}  // namespace moescope::ui
