#include "ui/breakdown_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPainter>
#include <QPushButton>
#include <QScrollArea>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include "storage/activity.h"
#include "storage/gpu_time.h"
#include "ui/breakdown_picture.h"

namespace moescope::ui {
namespace {

// Paints the view's picture at its width; as tall as the picture needs.
class BreakdownChart : public QWidget {
 public:
  explicit BreakdownChart(const BreakdownView* view, QWidget* parent) : QWidget(parent), view_(view) {}
  void refit() {
    setMinimumHeight(view_->pictureSize(std::max(width(), 400)).height());
    update();
  }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter p(this);
    view_->paintPicture(p, size());
  }
  void resizeEvent(QResizeEvent*) override { refit(); }

 private:
  const BreakdownView* view_;
};

QTableView* tableFor(QAbstractItemModel* model, QWidget* parent) {
  auto* view = new QTableView(parent);
  view->setModel(model);
  view->verticalHeader()->hide();
  // Headers such as "compute.attention" are wider than their numbers: columns fit them.
  view->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  view->horizontalHeader()->setStretchLastSection(true);
  view->setSelectionBehavior(QAbstractItemView::SelectRows);
  view->setWordWrap(false);
  return view;
}

}  // namespace

BreakdownView::BreakdownView(QWidget* parent) : QWidget(parent) {
  model_ = new BreakdownModel(this);
  comm_ = new CommTableModel(this);
  stepsLabel_ = new QLabel(this);
  unitBox_ = new QComboBox(this);
  unitBox_->addItem(tr("Time (ms)"));
  unitBox_->addItem(tr("Percent of the steps"));
  sourceBox_ = new QComboBox(this);
  sourceBox_->setObjectName(QStringLiteral("breakdownSource"));
  sourceBox_->addItem(tr("Host time"));
  sourceBox_->addItem(tr("GPU time"));
  sourceBox_->setToolTip(
      tr("Host time: the engine threads' spans. GPU time: the kernels and copies each "
         "span launched, by the span's category (runs traced on GPUs)."));
  auto* all = new QPushButton(tr("All Steps"), this);
  all->setToolTip(tr("Drag-select a range in the timeline (Shift+drag) to break down the steps it touches"));

  auto* chart = new BreakdownChart(this, this);
  chart_ = chart;
  auto* scroll = new QScrollArea(this);
  scroll->setWidget(chart);
  scroll->setWidgetResizable(true);
  // Room for a few stages' bars before scrolling (a 60 px strip showed one stage).
  scroll->setMinimumHeight(220);

  auto* tables = new QSplitter(Qt::Horizontal, this);
  tables->addWidget(tableFor(model_, tables));
  tables->addWidget(tableFor(comm_, tables));
  tables->setStretchFactor(0, 3);
  tables->setStretchFactor(1, 2);

  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(scroll);
  split->addWidget(tables);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);

  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("<b>Breakdown</b>"), this));
  bar->addWidget(stepsLabel_, 1);
  bar->addWidget(sourceBox_);
  bar->addWidget(unitBox_);
  bar->addWidget(all);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(bar);
  layout->addWidget(split, 1);

  connect(unitBox_, &QComboBox::currentIndexChanged, this,
          [this](int i) { setUnit(i == 1 ? BreakdownUnit::Percent : BreakdownUnit::Time); });
  connect(all, &QPushButton::clicked, this, &BreakdownView::showAllSteps);
  connect(sourceBox_, &QComboBox::currentIndexChanged, this,
          [this](int i) { setSource(i == 1 ? BreakdownSource::Gpu : BreakdownSource::Host); });
}

void BreakdownView::setSource(BreakdownSource source) {
  {
    const QSignalBlocker block(sourceBox_);
    sourceBox_->setCurrentIndex(source == BreakdownSource::Gpu ? 1 : 0);
  }
  if (source == source_) return;
  source_ = source;
  compute(chosen_);
}

void BreakdownView::setTrace(const storage::Trace* trace, bool keepSteps) {
  const bool first = trace_ == nullptr;
  trace_ = trace;
  if (first && trace) {
    const QSignalBlocker block(sourceBox_);
    source_ = trace->gpu.empty() ? BreakdownSource::Host : BreakdownSource::Gpu;
    sourceBox_->setCurrentIndex(source_ == BreakdownSource::Gpu ? 1 : 0);
  }
  sourceBox_->setEnabled(trace && !trace->gpu.empty());
  extents_ = trace ? storage::stepExtents(storage::hostActivity(*trace)) : std::vector<storage::StepExtent>{};
  compute(keepSteps ? chosen_ : std::vector<int32_t>{});
}

void BreakdownView::showRange(TimeRange range) {
  compute(storage::stepsIntersecting(extents_, range.start, range.end));
}

void BreakdownView::showAllSteps() {
  compute({});
}

void BreakdownView::compute(const std::vector<int32_t>& steps) {
  chosen_ = steps;
  storage::Breakdown b;
  if (trace_) {
    b = storage::breakdownOfSteps(
        source_ == BreakdownSource::Gpu ? storage::gpuActivity(*trace_) : storage::hostActivity(*trace_),
        steps);
  }
  model_->setBreakdown(std::move(b));
  comm_->setCommunication(model_->breakdown().communication);
  stepsLabel_->setText(stepsText(model_->breakdown().steps));
  static_cast<BreakdownChart*>(chart_)->refit();
  emit breakdownChanged();
}

void BreakdownView::setUnit(BreakdownUnit unit) {
  model_->setUnit(unit);
  unitBox_->setCurrentIndex(unit == BreakdownUnit::Percent ? 1 : 0);
  chart_->update();
}

QSize BreakdownView::pictureSize(int width) const {
  return breakdownPictureSize(model_->breakdown(), width);
}

void BreakdownView::paintPicture(QPainter& p, QSize size) const {
  paintBreakdown(p, size, model_->breakdown(), model_->unit(), title());
}

QString BreakdownView::title() const {
  const QString run = trace_ ? QString::fromStdString(trace_->run.name) : QString();
  return QStringLiteral("%1 · %2 · %3")
      .arg(run, source_ == BreakdownSource::Gpu ? tr("GPU time") : tr("host time"),
           stepsText(model_->breakdown().steps));
}

}  // namespace moescope::ui
