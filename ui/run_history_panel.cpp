#include "ui/run_history_panel.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLineEdit>
#include <QPushButton>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>
#include <set>

#include "ui/run_history_model.h"

namespace moescope::ui {

RunHistoryPanel::RunHistoryPanel(const QString& folder, QWidget* parent) : QWidget(parent) {
  model_ = new RunHistoryModel(this);
  folderEdit_ = new QLineEdit(this);
  auto* browse = new QToolButton(this);
  browse->setText(tr("..."));
  auto* reloadButton = new QToolButton(this);
  reloadButton->setText(tr("Reload"));
  view_ = new QTableView(this);
  view_->setModel(model_);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  view_->verticalHeader()->hide();
  view_->horizontalHeader()->setStretchLastSection(true);
  view_->setWordWrap(false);
  auto* open = new QPushButton(tr("&Open"), this);
  auto* compare = new QPushButton(tr("&Compare"), this);
  compare->setToolTip(tr("Select two or more runs to compare them"));
  compare->setEnabled(false);

  auto* top = new QHBoxLayout;
  top->addWidget(folderEdit_, 1);
  top->addWidget(browse);
  top->addWidget(reloadButton);
  auto* bottom = new QHBoxLayout;
  bottom->addStretch(1);
  bottom->addWidget(open);
  bottom->addWidget(compare);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  layout->addWidget(view_, 1);
  layout->addLayout(bottom);

  connect(folderEdit_, &QLineEdit::editingFinished, this, [this] {
    if (folderEdit_->text() != model_->folder()) setFolder(folderEdit_->text());
  });
  connect(browse, &QToolButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Run folder"), model_->folder());
    if (!dir.isEmpty()) setFolder(dir);
  });
  connect(reloadButton, &QToolButton::clicked, this, &RunHistoryPanel::reload);
  connect(view_, &QTableView::doubleClicked, this,
          [this](const QModelIndex& index) { emit openRequested({model_->entry(index.row()).path}); });
  connect(open, &QPushButton::clicked, this, [this] {
    if (const QStringList paths = selectedPaths(); !paths.isEmpty()) emit openRequested(paths);
  });
  connect(compare, &QPushButton::clicked, this, [this] {
    if (const QStringList paths = selectedPaths(); paths.size() >= 2) emit compareRequested(paths);
  });
  auto selectionChanged = [this, compare] { compare->setEnabled(selectedPaths().size() >= 2); };
  connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this, selectionChanged);
  connect(model_, &QAbstractItemModel::modelReset, this, selectionChanged);
  setFolder(folder);
}

void RunHistoryPanel::setFolder(const QString& folder) {
  folderEdit_->setText(folder);
  model_->setFolder(folder);
  view_->resizeColumnsToContents();
}

QString RunHistoryPanel::folder() const {
  return model_->folder();
}

void RunHistoryPanel::reload() {
  model_->reload();
  view_->resizeColumnsToContents();
}

QStringList RunHistoryPanel::selectedPaths() const {
  std::set<int> rows;
  for (const QModelIndex& index : view_->selectionModel()->selectedRows()) rows.insert(index.row());
  QStringList paths;
  for (int row : rows) {
    if (model_->entry(row).readable) paths << model_->entry(row).path;
  }
  return paths;
}

}  // namespace moescope::ui
