#include "ui/query_view.h"

#include <QComboBox>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QShortcut>
#include <QTableView>
#include <QVBoxLayout>
#include <exception>

#include "ui/table_csv.h"

namespace moescope::ui {
namespace {

struct Example {
  const char* title;
  const char* sql;
};

const Example kExamples[] = {
    {"GPU time by kernel",
     "SELECT s.text AS kernel, count(*) AS records, sum(g.\"end\" - g.start) / 1e6 AS total_ms,\n"
     "       avg(g.\"end\" - g.start) / 1e3 AS mean_us\n"
     "FROM gpu_activity g JOIN strings s ON s.id = g.name\n"
     "GROUP BY g.name ORDER BY total_ms DESC"},
    {"Host time by span name",
     "SELECT s.text AS name, count(*) AS spans, sum(x.\"end\" - x.start) / 1e6 AS total_ms\n"
     "FROM span x JOIN strings s ON s.id = x.name\n"
     "GROUP BY x.name ORDER BY total_ms DESC"},
    {"Steps", "SELECT step, loss, step_ms, tokens_per_s FROM step_metric ORDER BY step"},
    {"Slowest spans",
     "SELECT x.id, s.text AS name, x.track, x.step, x.microbatch, (x.\"end\" - x.start) / 1e6 AS ms\n"
     "FROM span x JOIN strings s ON s.id = x.name ORDER BY ms DESC LIMIT 100"},
    {"Tables", "SELECT name, sql FROM sqlite_master WHERE type = 'table'"},
};

}  // namespace

QueryView::QueryView(const QString& runFile, QWidget* parent) : QWidget(parent), file_(runFile) {
  model_ = new QueryModel(this);
  editor_ = new QPlainTextEdit(this);
  editor_->setObjectName(QStringLiteral("sql"));
  editor_->setPlaceholderText(tr("SELECT ... (read-only; Ctrl+Enter runs it)"));
  QFont mono(QStringLiteral("monospace"));
  mono.setStyleHint(QFont::TypeWriter);
  editor_->setFont(mono);
  editor_->setMaximumHeight(110);
  examples_ = new QComboBox(this);
  examples_->addItem(tr("Examples..."));
  for (const Example& e : kExamples) examples_->addItem(tr(e.title), QString::fromUtf8(e.sql));
  auto* runButton = new QPushButton(tr("&Run"), this);
  export_ = new QPushButton(tr("Export CSV..."), this);
  export_->setEnabled(false);
  status_ = new QLabel(this);
  status_->setObjectName(QStringLiteral("queryStatus"));
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  status_->setWordWrap(true);
  auto* table = new QTableView(this);
  table->setModel(model_);
  table->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
  table->setWordWrap(false);

  auto* buttons = new QVBoxLayout;
  buttons->addWidget(examples_);
  buttons->addWidget(runButton);
  buttons->addWidget(export_);
  buttons->addStretch(1);
  auto* top = new QHBoxLayout;
  top->addWidget(editor_, 1);
  top->addLayout(buttons);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(top);
  layout->addWidget(status_);
  layout->addWidget(table, 1);

  connect(runButton, &QPushButton::clicked, this, &QueryView::run);
  auto* shortcut = new QShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return), editor_);
  connect(shortcut, &QShortcut::activated, this, &QueryView::run);
  connect(examples_, &QComboBox::activated, this, [this](int i) {
    if (i <= 0) return;
    setSql(examples_->itemData(i).toString());
    examples_->setCurrentIndex(0);
    run();
  });
  connect(export_, &QPushButton::clicked, this, [this] {
    const QString path =
        QFileDialog::getSaveFileName(this, tr("Export Query Rows"), QString(), tr("CSV (*.csv)"));
    if (path.isEmpty()) return;
    QString error;
    if (!exportCsv(path, &error))
      QMessageBox::warning(this, tr("Export Query Rows"), tr("Could not write %1: %2").arg(path, error));
  });
}

void QueryView::setSql(const QString& sql) {
  editor_->setPlainText(sql);
}

QString QueryView::sql() const {
  return editor_->toPlainText();
}

bool QueryView::run() {
  QElapsedTimer timer;
  timer.start();
  try {
    storage::QueryResult r = storage::runQuery(file_.toStdString(), sql().toStdString());
    const QString rows = QLocale().toString(static_cast<qlonglong>(r.rows.size()));
    status_->setStyleSheet({});
    status_->setText(r.truncated
                         ? tr("first %1 rows (more not shown) in %2 ms").arg(rows).arg(timer.elapsed())
                         : tr("%1 rows in %2 ms").arg(rows).arg(timer.elapsed()));
    model_->setResult(std::move(r));
    export_->setEnabled(true);
    return true;
  } catch (const std::exception& e) {
    status_->setStyleSheet(QStringLiteral("color: #b00020;"));
    status_->setText(QString::fromUtf8(e.what()));
    model_->setResult({});
    export_->setEnabled(false);
    return false;
  }
}

QString QueryView::status() const {
  return status_->text();
}

bool QueryView::exportCsv(const QString& path, QString* error) const {
  return exportTableCsv(*model_, path, error);
}

}  // namespace moescope::ui
