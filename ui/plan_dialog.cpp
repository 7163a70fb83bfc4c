#include "ui/plan_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QProcess>
#include <QProgressDialog>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "ui/run_settings.h"

namespace moescope::ui {

PlanSettings defaultPlanSettings(const QString& runPath, const storage::RunInfo& run) {
  PlanSettings s;
  s.run = runPath;
  const QFileInfo info(runPath);
  s.out = info.dir().filePath(info.completeBaseName() + QStringLiteral("-predicted.moescope"));
  s.schedule = QString::fromUtf8(storage::scheduleName(run.schedule));
  s.pp = run.pp;
  s.microbatches = run.microbatches;
  s.virtualStages = run.virtual_stages;
  s.tp = run.tp;
  s.dp = run.dp;
  s.cpuRun = run.backend == "cpu";
  return s;
}

QStringList planArguments(const PlanSettings& s) {
  QStringList args{QStringLiteral("plan"), s.run, QStringLiteral("--schedule"), s.schedule};
  args << QStringLiteral("--pp") << QString::number(s.pp) << QStringLiteral("--microbatches")
       << QString::number(s.microbatches) << QStringLiteral("--tp") << QString::number(s.tp)
       << QStringLiteral("--dp") << QString::number(s.dp);
  if (s.schedule == QStringLiteral("interleaved"))
    args << QStringLiteral("--virtual-stages") << QString::number(s.virtualStages);
  if (s.cpuRun && s.cores >= 0) args << QStringLiteral("--cores") << QString::number(s.cores);
  if (s.cpuRun && s.sliceMs >= 0) args << QStringLiteral("--slice-ms") << QString::number(s.sliceMs);
  args << QStringLiteral("--out") << s.out << QStringLiteral("--quiet");
  return args;
}

PlanDialog::PlanDialog(const PlanSettings& initial, QWidget* parent) : QDialog(parent), initial_(initial) {
  setWindowTitle(tr("Plan: predict another configuration"));
  auto* form = new QFormLayout;
  form->addRow(tr("Calibration run:"), new QLabel(QFileInfo(initial.run).fileName(), this));
  schedule_ = new QComboBox(this);
  schedule_->addItems({QStringLiteral("gpipe"), QStringLiteral("1f1b"), QStringLiteral("interleaved"),
                       QStringLiteral("zb-h1")});
  schedule_->setCurrentText(initial.schedule);
  form->addRow(tr("Schedule:"), schedule_);
  auto spin = [this](int value, int max) {
    auto* box = new QSpinBox(this);
    box->setRange(1, max);
    box->setValue(value);
    return box;
  };
  pp_ = spin(initial.pp, 1024);
  microbatches_ = spin(initial.microbatches, 4096);
  virtualStages_ = spin(std::max(2, initial.virtualStages), 64);
  tp_ = spin(initial.tp, 1024);
  dp_ = spin(initial.dp, 1024);
  form->addRow(tr("Pipeline stages (pp):"), pp_);
  form->addRow(tr("Micro-batches:"), microbatches_);
  form->addRow(tr("Virtual stages (interleaved):"), virtualStages_);
  form->addRow(tr("Tensor parallel (tp):"), tp_);
  form->addRow(tr("Data parallel (dp):"), dp_);
  auto syncVirtual = [this] {
    virtualStages_->setEnabled(schedule_->currentText() == QStringLiteral("interleaved"));
  };
  connect(schedule_, &QComboBox::currentTextChanged, this, syncVirtual);
  syncVirtual();
  // The host of a CPU run (its rank threads share the cores): what the planner measures from the run
  // unless set here (docs/PLANNER.md, host cores and the host's scheduler).
  cores_ = new QSpinBox(this);
  cores_->setRange(-1, 4096);
  cores_->setSpecialValueText(tr("measured from the run"));
  cores_->setValue(initial.cores);
  cores_->setToolTip(tr("Host cores the rank threads share; 0: a core per rank"));
  sliceMs_ = new QDoubleSpinBox(this);
  sliceMs_->setRange(-1, 1000);
  sliceMs_->setDecimals(1);
  sliceMs_->setSingleStep(0.5);
  sliceMs_->setSuffix(tr(" ms"));
  sliceMs_->setSpecialValueText(tr("fitted from the run"));
  sliceMs_->setValue(initial.sliceMs);
  sliceMs_->setToolTip(
      tr("The scheduler's time slice when rank threads outnumber the cores; 0: "
         "processor sharing"));
  form->addRow(tr("Host cores (CPU run):"), cores_);
  form->addRow(tr("Time slice (CPU run):"), sliceMs_);
  cores_->setEnabled(initial.cpuRun);
  sliceMs_->setEnabled(initial.cpuRun);
  out_ = new QLineEdit(initial.out, this);
  auto* browse = new QPushButton(tr("Browse..."), this);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Predicted run"), out_->text(),
                                                      tr("moescope runs (*.moescope)"));
    if (!path.isEmpty()) out_->setText(path);
  });
  auto* outRow = new QHBoxLayout;
  outRow->addWidget(out_);
  outRow->addWidget(browse);
  form->addRow(tr("Prediction:"), outRow);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  buttons->button(QDialogButtonBox::Ok)->setText(tr("Predict"));
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addWidget(buttons);
}

PlanSettings PlanDialog::settings() const {
  PlanSettings s = initial_;
  s.schedule = schedule_->currentText();
  s.pp = pp_->value();
  s.microbatches = microbatches_->value();
  s.virtualStages = virtualStages_->value();
  s.tp = tp_->value();
  s.dp = dp_->value();
  s.cores = cores_->value();
  s.sliceMs = sliceMs_->value();
  s.out = out_->text();
  return s;
}

void planFromRun(QWidget* parent, const QString& runPath, const storage::RunInfo& run,
                 const std::function<void(const QStringList&)>& openCompare) {
  PlanDialog dialog(defaultPlanSettings(runPath, run), parent);
  if (dialog.exec() != QDialog::Accepted) return;
  const PlanSettings s = dialog.settings();
  // Planning reads the run and simulates a few steps: a second or two; the progress dialog keeps the
  // window responsive and lets the user give up on a large run.
  QProcess process;
  process.start(cliPath(), planArguments(s));
  QProgressDialog progress(QObject::tr("Predicting %1...").arg(s.schedule), QObject::tr("Cancel"), 0, 0,
                           parent);
  progress.setWindowModality(Qt::WindowModal);
  progress.setMinimumDuration(300);
  while (!process.waitForFinished(50)) {
    if (process.state() == QProcess::NotRunning) break;
    progress.setValue(0);
    if (progress.wasCanceled()) {
      process.kill();
      process.waitForFinished(1000);
      return;
    }
  }
  progress.close();
  if (process.exitStatus() != QProcess::NormalExit || process.exitCode() != 0) {
    QString message =
        QString::fromUtf8(process.readAllStandardError()).trimmed().section(QLatin1Char('\n'), -1);
    if (message.isEmpty()) message = process.errorString();
    QMessageBox::warning(parent, QObject::tr("Plan"), message);
    return;
  }
  openCompare({s.run, s.out});
}

}  // namespace moescope::ui
