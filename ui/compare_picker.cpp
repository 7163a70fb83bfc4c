#include "ui/compare_picker.h"

#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>

namespace moescope::ui {

ComparePicker::ComparePicker(const QStringList& openRuns, QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("Compare Runs"));
  list_ = new QListWidget(this);
  list_->setObjectName(QStringLiteral("runs"));
  auto* buttons = new QDialogButtonBox(this);
  compare_ = buttons->addButton(tr("&Compare"), QDialogButtonBox::AcceptRole);
  auto* add = buttons->addButton(tr("Add &Files..."), QDialogButtonBox::ActionRole);
  buttons->addButton(QDialogButtonBox::Cancel);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(new QLabel(tr("The runs to compare (two or more), the first as the baseline:"), this));
  layout->addWidget(list_, 1);
  layout->addWidget(buttons);
  addRuns(openRuns);
  connect(list_, &QListWidget::itemChanged, this, &ComparePicker::updateButton);
  connect(add, &QPushButton::clicked, this, [this] {
    addRuns(
        QFileDialog::getOpenFileNames(this, tr("Compare Runs"), QString(), tr("moescope runs (*.moescope)")));
  });
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  resize(620, 320);
}

void ComparePicker::addRuns(const QStringList& paths) {
  for (const QString& path : paths) {
    const QString absolute = QFileInfo(path).absoluteFilePath();
    if (!list_->findItems(QFileInfo(absolute).fileName(), Qt::MatchExactly).isEmpty() &&
        chosen().contains(absolute))
      continue;
    auto* item = new QListWidgetItem(QFileInfo(absolute).fileName(), list_);
    item->setData(Qt::UserRole, absolute);
    item->setToolTip(absolute);
    item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
    item->setCheckState(Qt::Checked);
  }
  updateButton();
}

QStringList ComparePicker::chosen() const {
  QStringList out;
  for (int i = 0; i < list_->count(); ++i) {
    if (list_->item(i)->checkState() == Qt::Checked) out << list_->item(i)->data(Qt::UserRole).toString();
  }
  return out;
}

void ComparePicker::updateButton() {
  compare_->setEnabled(chosen().size() >= 2);
}

}  // namespace moescope::ui
