// Analysis > Plan...: predicts another configuration of the open run with `moescope-cli plan` (run as
// a child process, as the run launcher runs `train`) and opens the prediction in the compare view
// beside the measured run, with the ratio table.
#pragma once

#include <QDialog>
#include <QString>
#include <QStringList>
#include <functional>

#include "storage/trace_model.h"

class QComboBox;
class QDoubleSpinBox;
class QLineEdit;
class QSpinBox;

namespace moescope::ui {

struct PlanSettings {
  QString run, out;
  QString schedule = QStringLiteral("1f1b");
  int pp = 1, microbatches = 1, virtualStages = 1, tp = 1, dp = 1;
  // A CPU run's host (plan --cores, --slice-ms): -1 takes what the planner measures from the run.
  bool cpuRun = false;
  int cores = -1;       // 0: a core per rank
  double sliceMs = -1;  // 0: processor sharing
  bool operator==(const PlanSettings&) const = default;
};

// The settings as they start for a run: its own configuration, the prediction beside it.
PlanSettings defaultPlanSettings(const QString& runPath, const storage::RunInfo& run);
// `moescope-cli plan` arguments for the settings.
QStringList planArguments(const PlanSettings& settings);

class PlanDialog : public QDialog {
  Q_OBJECT
 public:
  PlanDialog(const PlanSettings& initial, QWidget* parent = nullptr);
  PlanSettings settings() const;

 private:
  PlanSettings initial_;
  QComboBox* schedule_ = nullptr;
  QSpinBox *pp_ = nullptr, *microbatches_ = nullptr, *virtualStages_ = nullptr, *tp_ = nullptr,
           *dp_ = nullptr, *cores_ = nullptr;
  QDoubleSpinBox* sliceMs_ = nullptr;
  QLineEdit* out_ = nullptr;
};

// Asks for a configuration, runs the planner, and opens the compare view of the run and its
// prediction (openCompare: the measured run and the prediction); a refusal (a configuration the model cannot
// express) is shown in a message box.
void planFromRun(QWidget* parent, const QString& runPath, const storage::RunInfo& run,
                 const std::function<void(const QStringList&)>& openCompare);

}  // namespace moescope::ui
