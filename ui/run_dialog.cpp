#include "ui/run_dialog.h"

#include <QComboBox>
#include <QDateTime>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QToolButton>
#include <QVBoxLayout>
#include <exception>

#include "ui/run_launcher.h"

namespace moescope::ui {
namespace {

QSpinBox* spin(QWidget* parent, int min, int max, const QString& name) {
  auto* s = new QSpinBox(parent);
  s->setRange(min, max);
  s->setObjectName(name);
  s->setGroupSeparatorShown(true);
  return s;
}

QComboBox* combo(QWidget* parent, const QStringList& items, const QString& name) {
  auto* c = new QComboBox(parent);
  c->addItems(items);
  c->setObjectName(name);
  return c;
}

}  // namespace

RunDialog::RunDialog(const QString& outputFolder, QWidget* parent, const QString& cli)
    : QDialog(parent), cli_(cli), outputFolder_(outputFolder) {
  setWindowTitle(tr("New run"));
  QDir().mkpath(outputFolder_);

  preset_ = new QComboBox(this);
  preset_->setObjectName(QStringLiteral("preset"));
  preset_->addItem(tr("Defaults (MODEL.md)"), QString());
  for (const QString& file : presetFiles()) preset_->addItem(QFileInfo(file).completeBaseName(), file);

  vocab_ = spin(this, 1, 1 << 24, QStringLiteral("vocab"));
  seq_ = spin(this, 1, 1 << 16, QStringLiteral("seq"));
  dModel_ = spin(this, 1, 1 << 16, QStringLiteral("dModel"));
  layers_ = spin(this, 1, 1024, QStringLiteral("layers"));
  heads_ = spin(this, 1, 1024, QStringLiteral("heads"));
  dFf_ = spin(this, 1, 1 << 18, QStringLiteral("dFf"));
  layout_ = combo(this, {QStringLiteral("dense"), QStringLiteral("ppmoe"), QStringLiteral("dpmoe")},
                  QStringLiteral("layout"));
  layout_->setToolTip(
      tr("dense: no MoE layer. ppmoe: experts split over the tensor-parallel group, "
         "index slicing and one all-reduce. dpmoe: experts split over the data-parallel "
         "ranks, tokens sent with all-to-all (tp must be 1)."));
  experts_ = spin(this, 1, 4096, QStringLiteral("experts"));
  topK_ = spin(this, 1, 4096, QStringLiteral("topK"));
  capacity_ = new QDoubleSpinBox(this);
  capacity_->setObjectName(QStringLiteral("capacity"));
  capacity_->setRange(0, 64);
  capacity_->setDecimals(2);
  capacity_->setSingleStep(0.25);
  capacity_->setSpecialValueText(tr("no limit"));
  pp_ = spin(this, 1, 1024, QStringLiteral("pp"));
  tp_ = spin(this, 1, 1024, QStringLiteral("tp"));
  dp_ = spin(this, 1, 1024, QStringLiteral("dp"));
  micro_ = spin(this, 1, 4096, QStringLiteral("microbatches"));
  batch_ = spin(this, 1, 1 << 20, QStringLiteral("globalBatch"));
  schedule_ = combo(this, {QStringLiteral("1f1b"), QStringLiteral("gpipe")}, QStringLiteral("schedule"));
  steps_ = spin(this, 0, 10'000'000, QStringLiteral("steps"));
  backend_ = combo(this, {QStringLiteral("cpu"), QStringLiteral("cuda")}, QStringLiteral("backend"));
  backendNote_ = new QLabel(this);
  backendNote_->setWordWrap(true);
  if (const QString why = backendUnavailableReason(QStringLiteral("cuda"), cli_); !why.isEmpty()) {
    if (auto* model = qobject_cast<QStandardItemModel*>(backend_->model())) {
      QStandardItem* item = model->item(1);
      item->setEnabled(false);
      item->setToolTip(why);
    }
    backendNote_->setText(tr("cuda: %1").arg(why));
  } else {
    backend_->setCurrentIndex(1);  // a GPU is there: use it
  }
  out_ = new QLineEdit(this);
  out_->setObjectName(QStringLiteral("out"));
  auto* browse = new QToolButton(this);
  browse->setText(tr("..."));
  auto* outRow = new QHBoxLayout;
  outRow->addWidget(out_, 1);
  outRow->addWidget(browse);

  auto* model = new QGroupBox(tr("Model"), this);
  auto* modelForm = new QFormLayout(model);
  modelForm->addRow(tr("d_model"), dModel_);
  modelForm->addRow(tr("Layers"), layers_);
  modelForm->addRow(tr("Heads"), heads_);
  modelForm->addRow(tr("d_ff"), dFf_);
  modelForm->addRow(tr("Vocabulary"), vocab_);
  modelForm->addRow(tr("Sequence length"), seq_);

  auto* moe = new QGroupBox(tr("Layout"), this);
  auto* moeForm = new QFormLayout(moe);
  moeForm->addRow(tr("Layout"), layout_);
  moeForm->addRow(tr("Experts"), experts_);
  moeForm->addRow(tr("Top-k"), topK_);
  moeForm->addRow(tr("Capacity factor"), capacity_);
  moeForm->addRow(tr("Pipeline stages (pp)"), pp_);
  moeForm->addRow(tr("Tensor parallel (tp)"), tp_);
  moeForm->addRow(tr("Data parallel (dp)"), dp_);

  auto* train = new QGroupBox(tr("Training"), this);
  auto* trainForm = new QFormLayout(train);
  trainForm->addRow(tr("Micro-batches"), micro_);
  trainForm->addRow(tr("Global batch"), batch_);
  trainForm->addRow(tr("Schedule"), schedule_);
  trainForm->addRow(tr("Steps"), steps_);
  trainForm->addRow(tr("Backend"), backend_);
  trainForm->addRow(QString(), backendNote_);
  trainForm->addRow(tr("Run file"), outRow);

  message_ = new QLabel(this);
  message_->setObjectName(QStringLiteral("message"));
  message_->setWordWrap(true);
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);

  auto* buttons = new QDialogButtonBox(this);
  runButton_ = buttons->addButton(tr("&Run"), QDialogButtonBox::AcceptRole);
  auto* checkButton = buttons->addButton(tr("C&heck"), QDialogButtonBox::ActionRole);
  buttons->addButton(QDialogButtonBox::Cancel);

  auto* columns = new QHBoxLayout;
  columns->addWidget(model);
  columns->addWidget(moe);
  columns->addWidget(train);
  auto* presetRow = new QFormLayout;
  presetRow->addRow(tr("Preset"), preset_);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(presetRow);
  layout->addLayout(columns);
  layout->addWidget(message_);
  layout->addWidget(buttons);

  connect(preset_, &QComboBox::currentIndexChanged, this, &RunDialog::loadPresetAt);
  connect(layout_, &QComboBox::currentIndexChanged, this, [this] {
    updateEnabled();
    // A run file named by the dialog follows the layout; one the user typed stays.
    if (out_->text() == lastDefaultOut_) {
      lastDefaultOut_ = defaultOutput(layout_->currentText());
      out_->setText(lastDefaultOut_);
    }
  });
  connect(browse, &QToolButton::clicked, this, &RunDialog::browseOutput);
  connect(checkButton, &QPushButton::clicked, this, &RunDialog::check);
  connect(buttons, &QDialogButtonBox::accepted, this, &RunDialog::tryAccept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

  const int ppmoe = preset_->findText(QStringLiteral("ppmoe"));
  if (ppmoe > 0) {
    preset_->setCurrentIndex(ppmoe);
  } else {
    loadPresetAt(0);
  }
}

void RunDialog::loadPresetAt(int index) {
  const QString file = preset_->itemData(index).toString();
  RunSettings s;
  if (!file.isEmpty()) {
    try {
      s = loadPreset(file);
    } catch (const std::exception& e) {
      message_->setText(tr("Preset not read: %1").arg(QString::fromUtf8(e.what())));
      return;
    }
  }
  s.backend = backend_->currentText();
  s.out = defaultOutput(s.layout);
  lastDefaultOut_ = s.out;
  setSettings(s);
  message_->clear();
}

QString RunDialog::defaultOutput(const QString& layout) const {
  return QDir(outputFolder_)
      .filePath(QStringLiteral("%1-%2.moescope")
                    .arg(layout, QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"))));
}

RunSettings RunDialog::settings() const {
  RunSettings s;
  s.preset = presetPath_;
  s.vocabSize = vocab_->value();
  s.seqLen = seq_->value();
  s.dModel = dModel_->value();
  s.nLayers = layers_->value();
  s.nHeads = heads_->value();
  s.dFf = dFf_->value();
  s.layout = layout_->currentText();
  s.nExperts = experts_->value();
  s.topK = topK_->value();
  s.capacityFactor = capacity_->value();
  s.pp = pp_->value();
  s.tp = tp_->value();
  s.dp = dp_->value();
  s.microbatches = micro_->value();
  s.globalBatch = batch_->value();
  s.schedule = schedule_->currentText();
  s.steps = steps_->value();
  s.backend = backend_->currentText();
  s.out = out_->text().trimmed();
  return s;
}

void RunDialog::setSettings(const RunSettings& s) {
  presetPath_ = s.preset;
  {
    const QSignalBlocker block(preset_);
    const int i = preset_->findData(s.preset);
    preset_->setCurrentIndex(i >= 0 ? i : 0);
  }
  auto setInt = [](QSpinBox* box, int64_t v) { box->setValue(static_cast<int>(v)); };
  setInt(vocab_, s.vocabSize);
  setInt(seq_, s.seqLen);
  setInt(dModel_, s.dModel);
  setInt(layers_, s.nLayers);
  setInt(heads_, s.nHeads);
  setInt(dFf_, s.dFf);
  layout_->setCurrentText(s.layout);
  setInt(experts_, s.nExperts);
  setInt(topK_, s.topK);
  capacity_->setValue(s.capacityFactor);
  setInt(pp_, s.pp);
  setInt(tp_, s.tp);
  setInt(dp_, s.dp);
  setInt(micro_, s.microbatches);
  setInt(batch_, s.globalBatch);
  schedule_->setCurrentText(s.schedule);
  setInt(steps_, s.steps);
  const int backend = backend_->findText(s.backend);
  if (backend >= 0) backend_->setCurrentIndex(backend);
  out_->setText(s.out);
  updateEnabled();
}

void RunDialog::updateEnabled() {
  const bool moe = layout_->currentText() != QLatin1String("dense");
  experts_->setEnabled(moe);
  topK_->setEnabled(moe);
  capacity_->setEnabled(moe);
}

void RunDialog::browseOutput() {
  const QString path =
      QFileDialog::getSaveFileName(this, tr("Run file"), out_->text(), tr("moescope runs (*.moescope)"));
  if (!path.isEmpty()) out_->setText(path);
}

bool RunDialog::check() {
  const RunSettings s = settings();
  if (s.out.isEmpty()) {
    message_->setText(tr("Choose a run file."));
    return false;
  }
  const RunCheck result = checkRun(s, cli_);
  if (result.ok) {
    message_->setStyleSheet({});
    QString text = tr("The settings pass the checks of moescope-cli train.");
    if (QFileInfo::exists(s.out))
      text += tr(" %1 exists; the run replaces it.").arg(QFileInfo(s.out).fileName());
    message_->setText(text);
  } else {
    message_->setStyleSheet(QStringLiteral("color: #b00020;"));
    message_->setText(result.message);
  }
  return result.ok;
}

QString RunDialog::message() const {
  return message_->text();
}

void RunDialog::tryAccept() {
  if (check()) accept();
}

}  // namespace moescope::ui
