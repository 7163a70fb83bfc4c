#include "ui/compare_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPainter>
#include <QScrollArea>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>
#include <functional>

#include "storage/run_reader.h"

namespace moescope::ui {
namespace {

// The stacked timelines, painted at the widget's width (the table is the view's own table).
class CompareTimelines : public QWidget {
 public:
  CompareTimelines(std::function<QSize(int)> size, std::function<void(QPainter&, QSize)> paint,
                   QWidget* parent)
      : QWidget(parent), size_(std::move(size)), paint_(std::move(paint)) {}
  void refit() {
    setMinimumHeight(size_(std::max(width(), 400)).height());
    update();
  }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter p(this);
    paint_(p, size());
  }
  void resizeEvent(QResizeEvent*) override { refit(); }

 private:
  std::function<QSize(int)> size_;
  std::function<void(QPainter&, QSize)> paint_;
};

}  // namespace

CompareView::CompareView(const QStringList& paths, QWidget* parent) : QWidget(parent) {
  for (const QString& path : paths)
    traces_.push_back(std::make_unique<storage::Trace>(storage::RunReader::open(path.toStdString())->load()));
  build();
}

CompareView::CompareView(std::vector<storage::Trace> traces, QWidget* parent) : QWidget(parent) {
  for (auto& t : traces) traces_.push_back(std::make_unique<storage::Trace>(std::move(t)));
  build();
}

std::vector<const storage::Trace*> CompareView::pointers() const {
  std::vector<const storage::Trace*> out;
  for (const auto& t : traces_) out.push_back(t.get());
  return out;
}

void CompareView::build() {
  model_ = new CompareTableModel(this);
  std::vector<storage::RunSummary> summaries;
  for (const auto& t : traces_) summaries.push_back(storage::summarizeRun(*t));
  model_->setRuns(std::move(summaries));

  baselineBox_ = new QComboBox(this);
  for (const auto& t : traces_) baselineBox_->addItem(QString::fromStdString(t->run.name));

  auto* timelines = new CompareTimelines(
      [this](int width) {
        ComparePictureOptions o;
        o.width = width;
        o.table = false;
        return comparePictureSize(pointers(), model_->comparison(), o);
      },
      [this](QPainter& p, QSize size) {
        ComparePictureOptions o;
        o.width = size.width();
        o.table = false;
        paintCompare(p, size, pointers(), model_->comparison(), o);
      },
      this);
  timelines_ = timelines;
  timelines->refit();
  auto* scroll = new QScrollArea(this);
  scroll->setWidget(timelines);
  scroll->setWidgetResizable(true);

  auto* table = new QTableView(this);
  table->setModel(model_);
  table->verticalHeader()->hide();
  table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table->setWordWrap(false);

  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(scroll);
  split->addWidget(table);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  // The timelines first: a splitter left to itself gave them 0 px beside a table that wanted them all.
  split->setChildrenCollapsible(false);
  scroll->setMinimumHeight(std::min(timelines->minimumHeight() + 4, 260));
  split->setSizes({600, 300});

  auto* bar = new QHBoxLayout;
  bar->addWidget(
      new QLabel(tr("<b>Compare</b> · timelines from the start of a steady step, on one time axis"), this),
      1);
  bar->addWidget(new QLabel(tr("Baseline:"), this));
  bar->addWidget(baselineBox_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(bar);
  layout->addWidget(split, 1);

  connect(baselineBox_, &QComboBox::currentIndexChanged, this,
          [this](int i) { setBaseline(static_cast<size_t>(std::max(i, 0))); });
}

void CompareView::setBaseline(size_t baseline) {
  model_->setBaseline(baseline);
  if (baselineBox_->currentIndex() != static_cast<int>(baseline))
    baselineBox_->setCurrentIndex(static_cast<int>(baseline));
  timelines_->update();
}

QString CompareView::title() const {
  QStringList names;
  for (const auto& t : traces_) names << QString::fromStdString(t->run.name);
  return tr("compare: %1").arg(names.join(QStringLiteral(" · ")));
}

QSize CompareView::pictureSize(int width) const {
  ComparePictureOptions o;
  o.width = width;
  return comparePictureSize(pointers(), model_->comparison(), o);
}

void CompareView::paintPicture(QPainter& p, QSize size) const {
  ComparePictureOptions o;
  o.width = size.width();
  paintCompare(p, size, pointers(), model_->comparison(), o);
}

}  // namespace moescope::ui
