#include "ui/run_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDateTime>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleValidator>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>
#include <climits>
#include <cmath>

#include "ui/run_launcher.h"

namespace moescope::ui {
namespace {

// Sections in this order; others after them, alphabetically.
const QStringList kSectionOrder = {QStringLiteral("model"), QStringLiteral("parallel"),
                                   QStringLiteral("train"), QStringLiteral("data"), QStringLiteral("trace")};

int sectionRank(const QString& section) {
  const int i = static_cast<int>(kSectionOrder.indexOf(section));
  return i >= 0 ? i : static_cast<int>(kSectionOrder.size());
}

// The parallel sizes a GPU count depends on: when one changes, cuda's reason is asked again.
bool affectsGpuCount(const QString& key) {
  return key == QLatin1String("parallel.pp") || key == QLatin1String("parallel.tp") ||
         key == QLatin1String("parallel.dp");
}

const QString kScheduleKey = QStringLiteral("parallel.schedule");
const QString kVirtualStagesKey = QStringLiteral("parallel.virtual_stages");
// The one schedule that runs several model chunks per stage (docs/SCHEDULES.md); the CLI refuses
// parallel.virtual_stages > 1 with any other.
const QString kChunkedSchedule = QStringLiteral("interleaved");

}  // namespace

RunDialog::RunDialog(const QString& outputFolder, QWidget* parent, const QString& cli,
                     std::optional<ConfigSchema> schema)
    : QDialog(parent), cli_(cli), outputFolder_(outputFolder), schema_(std::move(schema)) {
  setWindowTitle(tr("New run"));
  QDir().mkpath(outputFolder_);
  message_ = new QLabel(this);
  message_->setObjectName(QStringLiteral("message"));
  message_->setWordWrap(true);
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  QString schemaError;
  if (!schema_) schema_ = loadConfigSchema(cli_, &schemaError);

  preset_ = new QComboBox(this);
  preset_->setObjectName(QStringLiteral("preset"));
  preset_->addItem(tr("Defaults (the CLI's)"), QString());
  if (schema_) {
    for (const ConfigPreset& p : schema_->presets) preset_->addItem(p.name, p.name);
  }

  backend_ = new QComboBox(this);
  backend_->setObjectName(QStringLiteral("backend"));
  backend_->addItems({QStringLiteral("cpu"), QStringLiteral("cuda")});
  backendNote_ = new QLabel(this);
  backendNote_->setObjectName(QStringLiteral("backendNote"));
  backendNote_->setWordWrap(true);
  cudaReason_ = backendUnavailableReason(QStringLiteral("cuda"), cli_);
  if (!cudaReason_.isEmpty()) {
    if (auto* model = qobject_cast<QStandardItemModel*>(backend_->model())) {
      QStandardItem* item = model->item(1);
      item->setEnabled(false);
      item->setToolTip(cudaReason_);
    }
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

  auto* buttons = new QDialogButtonBox(this);
  runButton_ = buttons->addButton(tr("&Run"), QDialogButtonBox::AcceptRole);
  auto* checkButton = buttons->addButton(tr("C&heck"), QDialogButtonBox::ActionRole);
  buttons->addButton(QDialogButtonBox::Cancel);

  auto* top = new QFormLayout;
  top->addRow(tr("Preset"), preset_);
  auto* bottom = new QFormLayout;
  bottom->addRow(tr("Backend"), backend_);
  bottom->addRow(QString(), backendNote_);
  bottom->addRow(tr("Run file"), outRow);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  if (schema_) {
    auto* grid = new QGridLayout;
    layout->addLayout(grid);
    buildFields();
    // Sections as group boxes, three to a row.
    QStringList sections;
    for (const ConfigKey& k : schema_->keys)
      if (!sections.contains(k.section())) sections << k.section();
    std::stable_sort(sections.begin(), sections.end(),
                     [](const QString& a, const QString& b) { return sectionRank(a) < sectionRank(b); });
    int index = 0;
    for (const QString& section : sections) {
      auto* box = new QGroupBox(section, this);
      auto* form = new QFormLayout(box);
      for (const ConfigKey& k : schema_->keys) {
        if (k.section() != section) continue;
        auto* label = new QLabel(k.name(), box);
        label->setToolTip(k.doc);
        form->addRow(label, fields_.value(k.key));
      }
      grid->addWidget(box, index / 3, index % 3, Qt::AlignTop);
      ++index;
    }
  } else {
    message_->setStyleSheet(QStringLiteral("color: #b00020;"));
    message_->setText(
        tr("The run settings could not be read (moescope-cli config --json): %1").arg(schemaError));
    runButton_->setEnabled(false);
    checkButton->setEnabled(false);
  }
  layout->addLayout(bottom);
  layout->addWidget(message_);
  layout->addWidget(buttons);

  noteTimer_ = new QTimer(this);
  noteTimer_->setSingleShot(true);
  noteTimer_->setInterval(300);
  connect(noteTimer_, &QTimer::timeout, this, &RunDialog::updateBackendNote);
  connect(preset_, &QComboBox::currentIndexChanged, this, &RunDialog::loadPresetAt);
  connect(browse, &QToolButton::clicked, this, &RunDialog::browseOutput);
  connect(checkButton, &QPushButton::clicked, this, &RunDialog::check);
  connect(buttons, &QDialogButtonBox::accepted, this, &RunDialog::tryAccept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

  if (!schema_) return;
  const int ppmoe = preset_->findText(QStringLiteral("ppmoe"));
  if (ppmoe > 0) {
    preset_->setCurrentIndex(ppmoe);
  } else {
    loadPresetAt(0);
  }
  updateBackendNote();
}

void RunDialog::buildFields() {
  for (const ConfigKey& k : schema_->keys) {
    QWidget* w = nullptr;
    if (k.type == QLatin1String("int")) {
      auto* spin = new QSpinBox(this);
      const double lo = k.min ? std::max(*k.min, double(INT_MIN)) : double(INT_MIN);
      const double hi = k.max ? std::min(*k.max, double(INT_MAX)) : double(INT_MAX);
      spin->setRange(static_cast<int>(lo), static_cast<int>(hi));
      connect(spin, &QSpinBox::valueChanged, this, [this, key = k.key] {
        if (affectsGpuCount(key)) noteTimer_->start();
      });
      w = spin;
    } else if (k.type == QLatin1String("float")) {
      auto* edit = new QLineEdit(this);
      auto* validator = new QDoubleValidator(edit);
      validator->setNotation(QDoubleValidator::ScientificNotation);
      validator->setLocale(QLocale::c());
      if (k.min) validator->setBottom(*k.min);
      if (k.max) validator->setTop(*k.max);
      edit->setValidator(validator);
      w = edit;
    } else if (k.type == QLatin1String("bool")) {
      w = new QCheckBox(this);
    } else if (!k.choices.isEmpty()) {
      auto* combo = new QComboBox(this);
      combo->addItems(k.choices);
      if (k.key == kScheduleKey)
        connect(combo, &QComboBox::currentTextChanged, this, &RunDialog::followSchedule);
      w = combo;
    } else {
      w = new QLineEdit(this);
    }
    w->setObjectName(k.key);
    QString tip = k.doc;
    if (k.min || k.max) {
      tip += tr(" (from %1 to %2)")
                 .arg(k.min ? QString::number(*k.min, 'g', 12) : QStringLiteral("-"),
                      k.max ? QString::number(*k.max, 'g', 12) : QStringLiteral("-"));
    }
    w->setToolTip(tip.trimmed());
    fields_.insert(k.key, w);
  }
}

QWidget* RunDialog::field(const QString& key) const {
  return fields_.value(key);
}

bool RunDialog::setValue(const QString& key, const QVariant& value) {
  QWidget* w = fields_.value(key);
  if (!w) return false;
  if (auto* spin = qobject_cast<QSpinBox*>(w)) {
    bool ok = false;
    const qlonglong v = value.toLongLong(&ok);
    if (!ok || v < spin->minimum() || v > spin->maximum()) return false;
    spin->setValue(static_cast<int>(v));
  } else if (auto* box = qobject_cast<QCheckBox*>(w)) {
    box->setChecked(value.toBool());
  } else if (auto* combo = qobject_cast<QComboBox*>(w)) {
    const int i = combo->findText(value.toString());
    if (i < 0) return false;
    combo->setCurrentIndex(i);
  } else if (auto* edit = qobject_cast<QLineEdit*>(w)) {
    edit->setText(value.typeId() == QMetaType::Double ? QString::number(value.toDouble(), 'g', 12)
                                                      : value.toString());
  }
  return true;
}

QVariant RunDialog::valueOf(const ConfigKey& k) const {
  QWidget* w = fields_.value(k.key);
  if (auto* spin = qobject_cast<QSpinBox*>(w)) return static_cast<qlonglong>(spin->value());
  if (auto* box = qobject_cast<QCheckBox*>(w)) return box->isChecked();
  if (auto* combo = qobject_cast<QComboBox*>(w)) return combo->currentText();
  if (auto* edit = qobject_cast<QLineEdit*>(w)) {
    if (k.type == QLatin1String("float")) {
      bool ok = false;
      const double v = QLocale::c().toDouble(edit->text().trimmed(), &ok);
      return ok ? QVariant(v) : QVariant(edit->text());  // the CLI names what it cannot read
    }
    return edit->text();
  }
  return k.defaultValue;
}

void RunDialog::loadPresetAt(int index) {
  const QString name = preset_->itemData(index).toString();
  RunSettings s = presetSettings(*schema_, schema_->preset(name));
  s.backend = backend_->currentText();
  s.out = defaultOutput();
  lastDefaultOut_ = s.out;
  setSettings(s);
  message_->clear();
}

QString RunDialog::defaultOutput() const {
  const QString layout = schema_ ? valueOf(ConfigKey{QStringLiteral("parallel.layout"),
                                                     QStringLiteral("string"), QStringLiteral("run")})
                                       .toString()
                                 : QStringLiteral("run");
  return QDir(outputFolder_)
      .filePath(QStringLiteral("%1-%2.moescope")
                    .arg(layout.isEmpty() ? QStringLiteral("run") : layout,
                         QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"))));
}

RunSettings RunDialog::settings() const {
  RunSettings s;
  s.preset = presetPath_;
  if (schema_) {
    for (const ConfigKey& k : schema_->keys) s.values.insert(k.key, valueOf(k));
  }
  s.backend = backend_->currentText();
  s.out = out_->text().trimmed();
  return s;
}

void RunDialog::setSettings(const RunSettings& s) {
  presetPath_ = s.preset;
  if (schema_) {
    const QSignalBlocker block(preset_);
    int found = 0;
    for (const ConfigPreset& p : schema_->presets) {
      if (p.file == s.preset) found = preset_->findData(p.name);
    }
    preset_->setCurrentIndex(std::max(found, 0));
  }
  for (auto it = s.values.constBegin(); it != s.values.constEnd(); ++it) setValue(it.key(), it.value());
  if (auto* schedule = qobject_cast<QComboBox*>(fields_.value(kScheduleKey)))
    followSchedule(schedule->currentText());
  const int backend = backend_->findText(s.backend);
  if (backend >= 0) backend_->setCurrentIndex(backend);
  out_->setText(s.out);
}

void RunDialog::updateBackendNote() {
  if (cudaReason_.isEmpty()) {
    backendNote_->clear();
    return;
  }
  // The reason for these parallel sizes (the GPUs they need), not for the CLI's defaults.
  RunSettings s = settings();
  s.backend = QStringLiteral("cuda");
  s.out.clear();
  const RunCheck c = checkRun(s, cli_);
  backendNote_->setText(tr("cuda: %1").arg(c.ok ? tr("these settings pass its checks") : c.message));
}

void RunDialog::followSchedule(const QString& schedule) {
  auto* stages = qobject_cast<QSpinBox*>(fields_.value(kVirtualStagesKey));
  if (!stages) return;
  const bool chunked = schedule == kChunkedSchedule;
  if (!chunked) stages->setValue(1);
  stages->setEnabled(chunked);
}

QString RunDialog::backendNote() const {
  return backendNote_->text();
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
    // The schedule's line ("schedule interleaved: pp 2, ...; theoretical bubble 11.1%"); each stage's
    // passes in the tooltip.
    const QString schedule = result.plan.section(QLatin1Char('\n'), 0, 0);
    if (!schedule.isEmpty()) text += QLatin1Char('\n') + schedule;
    message_->setText(text);
    message_->setToolTip(result.plan);
  } else {
    message_->setStyleSheet(QStringLiteral("color: #b00020;"));
    message_->setText(result.message);
    message_->setToolTip({});
  }
  return result.ok;
}

QString RunDialog::message() const {
  return message_->text();
}

void RunDialog::tryAccept() {
  if (schema_ && check()) accept();
}

}  // namespace moescope::ui
