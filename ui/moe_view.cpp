#include "ui/moe_view.h"

#include <QComboBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QMouseEvent>
#include <QPainter>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QSplitter>
#include <QTableView>
#include <QToolTip>
#include <QVBoxLayout>
#include <limits>
#include <sstream>

#include "ui/picture_export.h"
#include "ui/run_view.h"
#include "ui/timeline_widget.h"

namespace moescope::ui {

// The heatmap picture at the widget's width; forwards hover and clicks to the view.
class MoeChart : public QWidget {
 public:
  explicit MoeChart(MoeView* view) : QWidget(view), view_(view) { setMouseTracking(true); }
  void refit() {
    setMinimumHeight(view_->pictureSize(std::max(width(), 600)).height());
    update();
  }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter p(this);
    view_->paintPicture(p, size());
  }
  void resizeEvent(QResizeEvent*) override { refit(); }
  void mouseMoveEvent(QMouseEvent* e) override {
    const QString tip = view_->toolTipAt(e->position());
    if (tip.isEmpty())
      QToolTip::hideText();
    else
      QToolTip::showText(e->globalPosition().toPoint(), tip, this);
  }
  void mousePressEvent(QMouseEvent* e) override {
    if (e->button() == Qt::LeftButton) view_->clickedAt(e->position());
  }

 private:
  MoeView* view_;
};

MoeView::MoeView(QWidget* parent) : QWidget(parent) {
  load_ = new MoeLoadModel(this);
  layers_ = new MoeLayerModel(this);
  auto* chart = new MoeChart(this);
  chart_ = chart;
  auto* scroll = new QScrollArea(this);
  scroll->setWidget(chart);
  scroll->setWidgetResizable(true);

  auto* table = new QTableView(this);
  table->setModel(layers_);
  table->verticalHeader()->hide();
  table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);

  columnsBox_ = new QComboBox(this);
  columnsBox_->addItem(tr("per step"));
  columnsBox_->addItem(tr("per micro-batch"));
  connect(columnsBox_, &QComboBox::currentIndexChanged, this, [this](int i) { setPerMicrobatch(i == 1); });
  auto* csv = new QPushButton(tr("Export Load CSV..."), this);
  connect(csv, &QPushButton::clicked, this, [this] {
    const QString path =
        QFileDialog::getSaveFileName(this, tr("Export MoE Load"), QString(), tr("CSV (*.csv)"));
    QString error;
    if (!path.isEmpty() && !exportCsv(path, &error))
      QMessageBox::warning(this, tr("Export MoE Load"), tr("Could not write %1: %2").arg(path, error));
  });
  auto* picture = new QPushButton(tr("Export Picture..."), this);
  connect(picture, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export MoE View"), QString(),
                                                      tr("PNG picture (*.png);;SVG drawing (*.svg)"));
    QString error;
    if (!path.isEmpty() && !exportPicture(path, 1400, &error))
      QMessageBox::warning(this, tr("Export MoE View"), tr("Could not write %1: %2").arg(path, error));
  });
  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("<b>MoE load</b> · tokens each expert kept over the balanced share; hover a "
                               "cell for its numbers, click a column to show it in the timeline"),
                            this),
                 1);
  bar->addWidget(columnsBox_);
  bar->addWidget(picture);
  bar->addWidget(csv);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(scroll);
  split->addWidget(table);
  split->setStretchFactor(0, 4);
  split->setStretchFactor(1, 1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(bar);
  layout->addWidget(split, 1);
}

void MoeView::setTrace(const storage::Trace& trace) {
  routingOnly_ = {};
  routingOnly_.run = trace.run;
  routingOnly_.routing = trace.routing;
  routingOnly_.steps = trace.steps;
  picture_.title = tr("%1 · MoE load per layer and expert").arg(QString::fromStdString(trace.run.name));
  picture_.stats = storage::analyzeMoe(trace);
  picture_.steps = trace.steps;
  layers_->setStats(picture_.stats);
  setPerMicrobatch(columnsBox_->currentIndex() == 1);
}

void MoeView::setPerMicrobatch(bool perMicrobatch) {
  if (columnsBox_->currentIndex() != (perMicrobatch ? 1 : 0)) {
    columnsBox_->setCurrentIndex(perMicrobatch ? 1 : 0);  // comes back here
    return;
  }
  picture_.grid = storage::moeLoadGrid(routingOnly_, perMicrobatch);
  load_->setGrid(picture_.grid);
  static_cast<MoeChart*>(chart_)->refit();
}

MoeHeatmapGeometry MoeView::geometry() const {
  return moeHeatmapGeometry(picture_.grid, chart_->size());
}

QString MoeView::toolTipAt(QPointF p) const {
  const auto cell = geometry().cellAt(p);
  if (!cell) return {};
  return load_->data(load_->index(cell->first, cell->second), Qt::ToolTipRole).toString();
}

void MoeView::clickedAt(QPointF p) {
  const auto cell = geometry().cellAt(p);
  if (!cell) return;
  const storage::MoeGridColumn& c = picture_.grid.columns[static_cast<size_t>(cell->second)];
  emit columnClicked(c.step, c.microbatch);
}

QSize MoeView::pictureSize(int width) const {
  return moePictureSize(picture_.grid, width);
}

void MoeView::paintPicture(QPainter& p, QSize size) const {
  paintMoe(p, size, picture_);
}

bool MoeView::exportPicture(const QString& path, int width, QString* error) const {
  const QSize size = pictureSize(width);
  return writePicture(
      path, size, [&](QPainter& p) { paintPicture(p, size); }, error, picture_.title);
}

bool MoeView::exportCsv(const QString& path, QString* error) const {
  std::ostringstream text;
  storage::exportMoeLoadCsv(routingOnly_, text);
  const std::string csv = text.str();
  // QSaveFile writes beside the file and renames it over the file on commit: a failed export never
  // leaves a half-written file.
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly) || file.write(csv.data(), static_cast<qint64>(csv.size())) < 0 ||
      !file.commit()) {
    if (error) *error = file.errorString();
    return false;
  }
  return true;
}

namespace {

// The extent of a micro-batch's spans in a step, over every host track.
std::optional<TimeRange> microbatchExtent(const storage::Trace& t, int32_t step, int32_t microbatch) {
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  for (size_t tr = 0; tr < t.tracks.size() && tr < t.spans.size(); ++tr) {
    if (t.tracks[tr].kind != storage::TrackKind::HostThread) continue;
    const storage::SpanColumns& c = t.spans[tr];
    for (size_t i = 0; i < c.size(); ++i) {
      if (c.stepAt(i) != step || c.microbatch[i] != microbatch) continue;
      lo = std::min(lo, c.start[i]);
      hi = std::max(hi, c.endAt(i));
    }
  }
  if (lo >= hi) return std::nullopt;
  return TimeRange{lo, hi};
}

}  // namespace

MoeView* showMoePanel(RunView* run) {
  MoeView* view = run->findChild<MoeView*>();
  if (!view) {
    view = new MoeView;
    view->setTrace(run->trace());
    // The run may still be loading or growing: the view follows it.
    auto follow = [run, view] { view->setTrace(run->trace()); };
    QObject::connect(run, &RunView::loaded, view, follow);
    QObject::connect(run, &RunView::contentChanged, view, follow);
    QObject::connect(view, &MoeView::columnClicked, run, [run](int32_t step, int32_t microbatch) {
      if (microbatch != storage::kNone) {
        if (auto r = microbatchExtent(run->trace(), step, microbatch)) {
          run->timeline()->setVisibleRange(*r);
          return;
        }
      }
      run->timeline()->fitStep(step);
    });
    run->addPanelTab(view, QObject::tr("MoE Load"));
  }
  run->showPanelTab(view);
  return view;
}

}  // namespace moescope::ui
