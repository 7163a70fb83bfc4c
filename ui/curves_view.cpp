#include "ui/curves_view.h"

#include <QFileDialog>
#include <QHeaderView>
#include <QMainWindow>
#include <QMenuBar>
#include <QMessageBox>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollArea>
#include <QSplitter>
#include <QTableView>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <exception>
#include <functional>

#include "storage/run_reader.h"
#include "ui/picture_export.h"

namespace moescope::ui {
namespace {

class CurvesChart : public QWidget {
 public:
  explicit CurvesChart(CurvesView* view) : QWidget(view), view_(view) {
    setMouseTracking(true);
    setMinimumHeight(curvesPictureSize(800).height());
  }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter p(this);
    view_->paintPicture(p, size());
  }
  void mouseMoveEvent(QMouseEvent* e) override {
    const QString tip = view_->toolTipAt(e->position());
    if (tip.isEmpty())
      QToolTip::hideText();
    else
      QToolTip::showText(e->globalPosition().toPoint(), tip, this);
  }

 private:
  CurvesView* view_;
};

}  // namespace

CurvesView::CurvesView(QWidget* parent) : QWidget(parent) {
  model_ = new CurvesModel(this);
  chart_ = new CurvesChart(this);
  auto* scroll = new QScrollArea(this);
  scroll->setWidget(chart_);
  scroll->setWidgetResizable(true);
  auto* table = new QTableView(this);
  table->setModel(model_);
  table->verticalHeader()->hide();
  table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(scroll);
  split->addWidget(table);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(split);
}

void CurvesView::setRuns(std::vector<RunCurves> runs) {
  runs_ = std::move(runs);
  model_->setCurves(runs_.empty() ? RunCurves{} : runs_.front());
  chart_->update();
}

CurvesGeometry CurvesView::geometry() const {
  return curvesGeometry(runs_, chart_->size());
}

QString CurvesView::toolTipAt(QPointF p) const {
  const auto hit = geometry().hit(p);
  if (!hit) return {};
  const auto [curve, step] = *hit;
  QString tip = QStringLiteral("%1 · step %2").arg(curveName(curve)).arg(step);
  for (const RunCurves& run : runs_) {
    auto it = std::lower_bound(run.steps.begin(), run.steps.end(), step,
                               [](const storage::StepMetric& s, int32_t v) { return s.step < v; });
    if (it == run.steps.end() || it->step != step) continue;
    tip += QStringLiteral("\n%1: %2").arg(run.name).arg(curveValue(*it, curve), 0, 'g', 6);
  }
  return tip;
}

QString CurvesView::title() const {
  QStringList names;
  for (const RunCurves& r : runs_) names << r.name;
  return tr("curves: %1").arg(names.join(QStringLiteral(" · ")));
}

bool CurvesView::exportPicture(const QString& path, int width, QString* error) const {
  const QSize size = pictureSize(width);
  return writePicture(
      path, size, [&](QPainter& p) { paintPicture(p, size); }, error, title());
}

CurvesView* openCurvesWindow(const QStringList& paths, QWidget* parent) {
  std::vector<RunCurves> runs;
  try {
    for (const QString& path : paths)
      runs.push_back(runCurves(storage::RunReader::open(path.toStdString())->load()));
  } catch (const std::exception& e) {
    QMessageBox::warning(parent, QObject::tr("Curves"),
                         QObject::tr("Could not open the runs: %1").arg(QString::fromUtf8(e.what())));
    return nullptr;
  }
  return openCurvesWindow(std::move(runs), parent);
}

CurvesView* openCurvesWindow(std::vector<RunCurves> runs, QWidget* parent) {
  auto* window = new QMainWindow(parent);
  window->setAttribute(Qt::WA_DeleteOnClose);
  auto* view = new CurvesView(window);
  view->setRuns(std::move(runs));
  window->setWindowTitle(view->title());
  window->setCentralWidget(view);
  QMenu* file = window->menuBar()->addMenu(QObject::tr("&Export"));
  file->addAction(QObject::tr("Curves as PNG or SVG..."), window, [window, view] {
    const QString path =
        QFileDialog::getSaveFileName(window, QObject::tr("Export Curves"), QString(),
                                     QStringLiteral("PNG picture (*.png);;SVG drawing (*.svg)"));
    QString error;
    if (!path.isEmpty() && !view->exportPicture(path, 1400, &error))
      QMessageBox::warning(window, QObject::tr("Export Curves"),
                           QObject::tr("Could not write %1: %2").arg(path, error));
  });
  window->resize(1300, 900);
  window->show();
  return view;
}

}  // namespace moescope::ui
