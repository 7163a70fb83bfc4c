#include "ui/import_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

namespace moescope::ui {
namespace {

QSpinBox* sizeBox(QWidget* parent) {
  auto* box = new QSpinBox(parent);
  box->setRange(0, 1 << 20);
  box->setSpecialValueText(QObject::tr("auto"));  // 0: follows from the traces' world size
  return box;
}

// "rank0.pt.trace.json.gz" -> "rank0"
QString baseName(const QString& path) {
  QString name = QFileInfo(path).fileName();
  for (const char* suffix : {".gz", ".json", ".pt.trace"}) {
    if (name.endsWith(QLatin1String(suffix))) name.chop(static_cast<int>(qstrlen(suffix)));
  }
  return name.isEmpty() ? QStringLiteral("imported") : name;
}

}  // namespace

ImportDialog::ImportDialog(QWidget* parent) : QDialog(parent), runner_(new ImportRunner(this)) {
  setWindowTitle(tr("Import PyTorch Profiler Traces"));
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(new QLabel(tr("Trace files, one per rank (torch.profiler's .json or .json.gz):"), this));
  traces_ = new QListWidget(this);
  traces_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  layout->addWidget(traces_);
  auto* traceButtons = new QHBoxLayout;
  addButton_ = new QPushButton(tr("&Add..."), this);
  removeButton_ = new QPushButton(tr("&Remove"), this);
  traceButtons->addWidget(addButton_);
  traceButtons->addWidget(removeButton_);
  traceButtons->addStretch();
  layout->addLayout(traceButtons);
  connect(addButton_, &QPushButton::clicked, this, &ImportDialog::browseTraces);
  connect(removeButton_, &QPushButton::clicked, this, [this] { qDeleteAll(traces_->selectedItems()); });

  auto* form = new QFormLayout;
  pp_ = sizeBox(this);
  tp_ = sizeBox(this);
  dp_ = sizeBox(this);
  auto* sizes = new QHBoxLayout;
  for (auto [label, box] : {std::pair{tr("pp"), pp_}, std::pair{tr("tp"), tp_}, std::pair{tr("dp"), dp_}}) {
    sizes->addWidget(new QLabel(label, this));
    sizes->addWidget(box);
  }
  form->addRow(tr("Layout:"), sizes);
  order_ = new QLineEdit(QStringLiteral("tp-dp-pp"), this);
  order_->setToolTip(tr("The order ranks fill the layout in, fastest first, as Megatron's --order"));
  form->addRow(tr("Rank order:"), order_);
  schedule_ = new QComboBox(this);
  schedule_->addItems({QStringLiteral("1f1b"), QStringLiteral("gpipe")});
  schedule_->setToolTip(tr("Micro-batches that range names do not carry are rebuilt from the schedule"));
  form->addRow(tr("Schedule:"), schedule_);
  rules_ = new QLineEdit(this);
  rules_->setPlaceholderText(tr("optional: a naming rules file (TOML), tried before the shipped rules"));
  auto* rulesRow = new QHBoxLayout;
  rulesRow->addWidget(rules_);
  auto* rulesBrowse = new QPushButton(tr("Browse..."), this);
  rulesRow->addWidget(rulesBrowse);
  connect(rulesBrowse, &QPushButton::clicked, this, &ImportDialog::browseRules);
  form->addRow(tr("Rules:"), rulesRow);
  output_ = new QLineEdit(this);
  auto* outputRow = new QHBoxLayout;
  outputRow->addWidget(output_);
  auto* outputBrowse = new QPushButton(tr("Browse..."), this);
  outputRow->addWidget(outputBrowse);
  connect(outputBrowse, &QPushButton::clicked, this, &ImportDialog::browseOutput);
  form->addRow(tr("Run file:"), outputRow);
  layout->addLayout(form);

  progress_ = new QProgressBar(this);
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  progress_->setTextVisible(false);
  layout->addWidget(progress_);
  message_ = new QLabel(this);
  message_->setWordWrap(true);
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(message_);

  auto* buttons = new QDialogButtonBox(this);
  importButton_ = buttons->addButton(tr("&Import"), QDialogButtonBox::AcceptRole);
  cancelButton_ = buttons->addButton(QDialogButtonBox::Cancel);
  layout->addWidget(buttons);
  connect(importButton_, &QPushButton::clicked, this, &ImportDialog::startImport);
  connect(cancelButton_, &QPushButton::clicked, this, &ImportDialog::reject);
  connect(runner_, &ImportRunner::progress, progress_, &QProgressBar::setValue);
  connect(runner_, &ImportRunner::finished, this, &ImportDialog::onFinished);
  resize(620, 480);
}

ImportSettings ImportDialog::settings() const {
  ImportSettings s;
  for (int i = 0; i < traces_->count(); ++i) s.traces << traces_->item(i)->text();
  s.output = output_->text().trimmed();
  s.pp = pp_->value();
  s.tp = tp_->value();
  s.dp = dp_->value();
  s.order = order_->text().trimmed();
  s.schedule = schedule_->currentText();
  if (!rules_->text().trimmed().isEmpty()) s.rules << rules_->text().trimmed();
  return s;
}

void ImportDialog::setSettings(const ImportSettings& s) {
  traces_->clear();
  traces_->addItems(s.traces);
  output_->setText(s.output);
  pp_->setValue(s.pp);
  tp_->setValue(s.tp);
  dp_->setValue(s.dp);
  order_->setText(s.order);
  schedule_->setCurrentText(s.schedule);
  rules_->setText(s.rules.value(0));
}

void ImportDialog::addTraces(const QStringList& paths) {
  traces_->addItems(paths);
  if (output_->text().isEmpty() && !paths.isEmpty()) {
    const QFileInfo first(paths.front());
    output_->setText(first.dir().filePath(baseName(first.filePath()) + QStringLiteral(".moescope")));
  }
}

QString ImportDialog::message() const {
  return message_->text();
}

int ImportDialog::progressValue() const {
  return progress_->value();
}

void ImportDialog::browseTraces() {
  addTraces(QFileDialog::getOpenFileNames(this, tr("PyTorch profiler traces"), QString(),
                                          tr("PyTorch profiler traces (*.json *.json.gz);;All files (*)")));
}

void ImportDialog::browseOutput() {
  const QString path =
      QFileDialog::getSaveFileName(this, tr("Run file"), output_->text(), tr("moescope runs (*.moescope)"));
  if (!path.isEmpty()) output_->setText(path);
}

void ImportDialog::browseRules() {
  const QString path =
      QFileDialog::getOpenFileName(this, tr("Naming rules"), QString(), tr("Rules (*.toml);;All files (*)"));
  if (!path.isEmpty()) rules_->setText(path);
}

void ImportDialog::setRunning(bool running) {
  importButton_->setEnabled(!running);
  addButton_->setEnabled(!running);
  removeButton_->setEnabled(!running);
  traces_->setEnabled(!running);
}

void ImportDialog::startImport() {
  const ImportSettings s = settings();
  if (s.traces.isEmpty()) {
    message_->setText(tr("Add the trace files to import (one per rank)."));
    return;
  }
  if (s.output.isEmpty()) {
    message_->setText(tr("Choose the run file to write."));
    return;
  }
  message_->setText(tr("Importing %1 trace(s)...").arg(s.traces.size()));
  setRunning(true);
  runner_->start(s);
}

void ImportDialog::onFinished(ImportRunner::Outcome outcome, const QString& message) {
  setRunning(false);
  switch (outcome) {
    case ImportRunner::Outcome::Complete:
      progress_->setValue(1000);
      message_->setText(message);
      emit imported(settings().output);
      accept();
      break;
    case ImportRunner::Outcome::Cancelled:
      progress_->setValue(0);
      message_->setText(message);
      break;
    case ImportRunner::Outcome::Failed:
    case ImportRunner::Outcome::None:
      progress_->setValue(0);
      message_->setText(tr("Import failed: %1").arg(message));
      break;
  }
}

void ImportDialog::reject() {
  if (runner_->isRunning()) {
    message_->setText(tr("Cancelling..."));
    runner_->cancel();  // finished() follows; the dialog stays until the user closes it
    return;
  }
  QDialog::reject();
}

}  // namespace moescope::ui
