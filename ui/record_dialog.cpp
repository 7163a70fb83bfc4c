#include "ui/record_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <functional>

namespace moescope::ui {
namespace {

// Lines kept in the output pane: a long job prints without end; the oldest go first.
constexpr int kMaxOutputLines = 20'000;
const QString kErrorStyle = QStringLiteral("color: #b00020;");

// A path field with its Browse button; pick gets the field's text and returns the new one ("" keeps it).
QHBoxLayout* pathRow(QLineEdit* field, const std::function<QString(const QString&)>& pick) {
  auto* row = new QHBoxLayout;
  row->addWidget(field, 1);
  auto* browse = new QPushButton(QObject::tr("Browse..."), field->parentWidget());
  row->addWidget(browse);
  QObject::connect(browse, &QPushButton::clicked, field, [field, pick] {
    if (const QString path = pick(field->text()); !path.isEmpty()) field->setText(path);
  });
  return row;
}

QSpinBox* sizeBox(const QString& name, QWidget* parent) {
  auto* box = new QSpinBox(parent);
  box->setObjectName(name);
  box->setRange(1, 1 << 20);
  box->setPrefix(name + QStringLiteral(" "));
  return box;
}

}  // namespace

RecordDialog::RecordDialog(const QString& outputFolder, QWidget* parent, const QString& cli)
    : QDialog(parent), runner_(new RecordRunner(this, cli)) {
  setWindowTitle(tr("Record a program"));
  auto* layout = new QVBoxLayout(this);
  auto* intro = new QLabel(tr("Runs the command under <tt>moescope-cli record</tt>: its NVTX ranges and "
                              "CUDA work (every process it starts) go into one run file, opened here "
                              "when it ends."),
                           this);
  intro->setWordWrap(true);
  layout->addWidget(intro);

  // Everything the user sets, disabled as one while a recording goes.
  form_ = new QWidget(this);
  auto* inputs = new QVBoxLayout(form_);
  inputs->setContentsMargins(0, 0, 0, 0);
  auto* form = new QFormLayout;
  inputs->addLayout(form);
  command_ = new QLineEdit(form_);
  command_->setObjectName(QStringLiteral("command"));
  command_->setPlaceholderText(tr("torchrun --nproc-per-node 2 train.py --steps 20"));
  command_->setToolTip(tr("The program and its arguments; double quotes keep spaces inside an argument"));
  form->addRow(tr("Command:"), command_);
  workingDir_ = new QLineEdit(form_);
  workingDir_->setObjectName(QStringLiteral("workingDir"));
  workingDir_->setPlaceholderText(tr("where the command runs (default: %1)").arg(QDir::currentPath()));
  form->addRow(tr("Working folder:"), pathRow(workingDir_, [this](const QString& now) {
                 return QFileDialog::getExistingDirectory(this, tr("Working folder"), now);
               }));
  environment_ = new QPlainTextEdit(form_);
  environment_->setObjectName(QStringLiteral("environment"));
  environment_->setPlaceholderText(tr("NAME=value, one a line (added to this environment)"));
  environment_->setTabChangesFocus(true);
  environment_->setFixedHeight(environment_->fontMetrics().lineSpacing() * 3 + 12);
  form->addRow(tr("Environment:"), environment_);
  output_ = new QLineEdit(form_);
  output_->setObjectName(QStringLiteral("output"));
  form->addRow(tr("Run file:"), pathRow(output_, [this](const QString& now) {
                 return QFileDialog::getSaveFileName(this, tr("Run file"), now,
                                                     tr("moescope runs (*.moescope)"));
               }));
  replace_ = new QCheckBox(tr("Replace it if it exists (once the new run is whole)"), form_);
  replace_->setObjectName(QStringLiteral("replace"));
  form->addRow(QString(), replace_);

  auto* options = new QGroupBox(tr("Recording options"), form_);
  auto* optionsForm = new QFormLayout(options);
  pp_ = sizeBox(QStringLiteral("pp"), options);
  tp_ = sizeBox(QStringLiteral("tp"), options);
  dp_ = sizeBox(QStringLiteral("dp"), options);
  order_ = new QLineEdit(options);
  order_->setObjectName(QStringLiteral("order"));
  order_->setPlaceholderText(QStringLiteral("tp-dp-pp"));
  order_->setToolTip(tr("The order ranks fill the layout in, fastest first, as Megatron's --order"));
  auto* sizes = new QHBoxLayout;
  for (QWidget* w : {static_cast<QWidget*>(pp_), static_cast<QWidget*>(tp_), static_cast<QWidget*>(dp_)})
    sizes->addWidget(w);
  sizes->addWidget(new QLabel(tr("rank order"), options));
  sizes->addWidget(order_, 1);
  optionsForm->addRow(tr("Layout:"), sizes);
  schedule_ = new QComboBox(options);
  schedule_->setObjectName(QStringLiteral("schedule"));
  schedule_->addItems({QStringLiteral("1f1b"), QStringLiteral("gpipe")});
  schedule_->setToolTip(tr("Micro-batches that range names do not carry are rebuilt from the schedule"));
  optionsForm->addRow(tr("Schedule:"), schedule_);
  rules_ = new QLineEdit(options);
  rules_->setObjectName(QStringLiteral("rules"));
  rules_->setPlaceholderText(tr("optional: a naming rules file (TOML), tried before the shipped rules"));
  optionsForm->addRow(tr("Rules:"), pathRow(rules_, [this](const QString& now) {
                        return QFileDialog::getOpenFileName(this, tr("Naming rules"), now,
                                                            tr("Rules (*.toml);;All files (*)"));
                      }));
  steps_ = new QLineEdit(options);
  steps_->setObjectName(QStringLiteral("steps"));
  steps_->setPlaceholderText(tr("every step; or A:B to keep steps A to B"));
  optionsForm->addRow(tr("Steps:"), steps_);
  nvtx_ = new QCheckBox(tr("NVTX ranges"), options);
  nvtx_->setObjectName(QStringLiteral("nvtx"));
  kernels_ = new QCheckBox(tr("kernels, copies, memsets"), options);
  kernels_->setObjectName(QStringLiteral("kernels"));
  launchCalls_ = new QComboBox(options);
  launchCalls_->setObjectName(QStringLiteral("launchCalls"));
  launchCalls_->addItems({QStringLiteral("activity"), QStringLiteral("callbacks"), QStringLiteral("off")});
  launchCalls_->setToolTip(
      tr("How the calls that launch GPU work are recorded: activity (the cheapest), "
         "callbacks (costlier), off (kernels not tied to their ranges)"));
  auto* what = new QHBoxLayout;
  what->addWidget(nvtx_);
  what->addWidget(kernels_);
  what->addWidget(new QLabel(tr("launch calls"), options));
  what->addWidget(launchCalls_);
  what->addStretch();
  optionsForm->addRow(tr("Record:"), what);
  connect(kernels_, &QCheckBox::toggled, launchCalls_, &QWidget::setEnabled);
  inputs->addWidget(options);
  layout->addWidget(form_);

  log_ = new QPlainTextEdit(this);
  log_->setObjectName(QStringLiteral("log"));
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(kMaxOutputLines);
  log_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  log_->setPlaceholderText(tr("The program's output and record's lines show here while it runs."));
  layout->addWidget(log_, 1);
  message_ = new QLabel(this);
  message_->setObjectName(QStringLiteral("message"));
  message_->setWordWrap(true);
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(message_);

  auto* buttons = new QDialogButtonBox(this);
  recordButton_ = buttons->addButton(tr("&Record"), QDialogButtonBox::AcceptRole);
  cancelButton_ = buttons->addButton(QDialogButtonBox::Cancel);
  layout->addWidget(buttons);
  connect(recordButton_, &QPushButton::clicked, this, &RecordDialog::startRecording);
  connect(cancelButton_, &QPushButton::clicked, this, &RecordDialog::reject);
  connect(runner_, &RecordRunner::output, this, &RecordDialog::onOutput);
  connect(runner_, &RecordRunner::finished, this, &RecordDialog::onFinished);

  setSettings(loadRecordSettings(QDir(outputFolder).filePath(QStringLiteral("record.moescope"))));
  resize(760, 640);
}

RecordSettings RecordDialog::settings() const {
  RecordSettings s;
  s.command = command_->text().trimmed();
  s.workingDir = workingDir_->text().trimmed();
  s.environment = environment_->toPlainText().trimmed();
  s.output = output_->text().trimmed();
  s.replace = replace_->isChecked();
  s.pp = pp_->value();
  s.tp = tp_->value();
  s.dp = dp_->value();
  s.order = order_->text().trimmed();
  s.schedule = schedule_->currentText();
  s.rules = rules_->text().trimmed();
  s.steps = steps_->text().trimmed();
  s.nvtx = nvtx_->isChecked();
  s.kernels = kernels_->isChecked();
  s.launchCalls = launchCalls_->currentText();
  return s;
}

void RecordDialog::setSettings(const RecordSettings& s) {
  command_->setText(s.command);
  workingDir_->setText(s.workingDir);
  environment_->setPlainText(s.environment);
  output_->setText(s.output);
  replace_->setChecked(s.replace);
  pp_->setValue(s.pp);
  tp_->setValue(s.tp);
  dp_->setValue(s.dp);
  order_->setText(s.order);
  schedule_->setCurrentText(s.schedule);
  rules_->setText(s.rules);
  steps_->setText(s.steps);
  nvtx_->setChecked(s.nvtx);
  kernels_->setChecked(s.kernels);
  launchCalls_->setCurrentText(s.launchCalls);
  launchCalls_->setEnabled(s.kernels);
}

QString RecordDialog::message() const {
  return message_->text();
}

QString RecordDialog::outputText() const {
  return log_->toPlainText();
}

void RecordDialog::showMessage(const QString& text, bool error) {
  message_->setStyleSheet(error ? kErrorStyle : QString());
  message_->setText(text);
}

void RecordDialog::setRunning(bool running) {
  form_->setEnabled(!running);
  recordButton_->setEnabled(!running);
}

void RecordDialog::startRecording() {
  if (runner_->isRunning()) return;
  const RecordSettings s = settings();
  if (const QString problem = recordSettingsProblem(s); !problem.isEmpty()) {
    showMessage(problem, true);
    return;
  }
  saveRecordSettings(s);
  log_->clear();
  showMessage(tr("Recording %1...").arg(commandWords(s).join(QLatin1Char(' '))), false);
  setRunning(true);
  if (!runner_->start(s)) setRunning(runner_->isRunning());  // finished() has said why
}

void RecordDialog::onOutput(const QString& line, bool isStderr) {
  log_->appendPlainText(line);
  if (isStderr && line.startsWith(QLatin1String("moescope: "))) showMessage(line, false);
}

void RecordDialog::onFinished(RecordRunner::Outcome outcome, const QString& message, const QString& runFile) {
  setRunning(false);
  if (!runFile.isEmpty()) emit recorded(runFile);
  switch (outcome) {
    case RecordRunner::Outcome::Complete:
      showMessage(message, false);
      accept();
      return;
    case RecordRunner::Outcome::Cancelled:
      showMessage(runFile.isEmpty() ? tr("Recording cancelled: %1").arg(message)
                                    : tr("Recording cancelled; the run so far is open (marked failed)."),
                  false);
      return;
    case RecordRunner::Outcome::Failed:
    case RecordRunner::Outcome::None:
      break;
  }
  showMessage(message, true);
  QMessageBox box(QMessageBox::Critical, tr("Record failed"), message, QMessageBox::Ok, this);
  box.setInformativeText(runFile.isEmpty()
                             ? tr("No run file was written. The program's output is in the Record window.")
                             : tr("The run is open, marked failed. The program's output is in the Record "
                                  "window."));
  box.exec();
}

void RecordDialog::reject() {
  if (runner_->isRunning()) {
    showMessage(tr("Cancelling: the program is asked to stop (as Ctrl-C does)..."), false);
    runner_->cancel();  // finished() follows; the dialog stays until the user closes it
    return;
  }
  QDialog::reject();
}

}  // namespace moescope::ui
