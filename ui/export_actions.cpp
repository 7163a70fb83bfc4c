#include "ui/export_actions.h"

#include <QAction>
#include <QFileDialog>
#include <QMainWindow>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QPushButton>
#include <QStatusBar>
#include <QVBoxLayout>
#include <exception>
#include <fstream>

#include "storage/export_chrome.h"
#include "storage/export_csv.h"
#include "ui/breakdown_view.h"
#include "ui/compare_view.h"
#include "ui/curves_view.h"
#include "ui/moe_view.h"
#include "ui/picture_export.h"
#include "ui/plan_dialog.h"
#include "ui/run_view.h"
#include "ui/span_access.h"
#include "ui/table_csv.h"
#include "ui/timeline_widget.h"

namespace moescope::ui {

RenderOptions visibleTimelineOptions(const TimelineWidget& timeline, const storage::Trace& trace) {
  RenderOptions o;
  o.range = timeline.visibleRange();
  o.metrics = timeline.layout().metrics;
  for (const TimelineRow& row : timeline.layout().rows) {
    if (row.kind == TimelineRow::Kind::Group && row.collapsed) o.collapsedRanks.insert(row.rank);
  }
  o.size = QSize(std::max(timeline.width(), 300), timeline.layout().height + kLegendStripHeight + 4);
  o.origin = timelineExtent(trace).start;
  o.summary = &timeline.summary();
  o.selected = timeline.selected();
  o.area = timeline.area();
  return o;
}

bool exportTimelinePicture(const TimelineWidget& timeline, const storage::Trace& trace, const QString& path,
                           QString* error) {
  const RenderOptions o = visibleTimelineOptions(timeline, trace);
  return writePicture(
      path, o.size, [&](QPainter& p) { paintTimelinePicture(p, trace, o); }, error,
      QString::fromStdString(trace.run.name));
}

bool exportBreakdownPicture(const BreakdownView& view, const QString& path, int width, QString* error) {
  const QSize size = view.pictureSize(width);
  return writePicture(
      path, size, [&](QPainter& p) { view.paintPicture(p, size); }, error, view.title());
}

bool exportComparePicture(const CompareView& view, const QString& path, int width, QString* error) {
  const QSize size = view.pictureSize(width);
  return writePicture(
      path, size, [&](QPainter& p) { view.paintPicture(p, size); }, error, view.title());
}

bool exportRun(const storage::Trace& trace, const QString& format, const QString& path, QString* error) {
  std::ofstream out(path.toStdString(), std::ios::binary | std::ios::trunc);
  if (!out) {
    if (error) *error = QObject::tr("cannot write %1").arg(path);
    return false;
  }
  if (format == QStringLiteral("chrome"))
    storage::exportChromeTrace(trace, out);
  else
    storage::exportSpansCsv(trace, out);
  out.close();
  if (!out && error) *error = QObject::tr("writing %1 failed").arg(path);
  return static_cast<bool>(out);
}

namespace {

// Asks for a file name; runs write(path, &error) and reports the outcome.
void saveAs(QWidget* parent, const QString& caption, const QString& filter,
            const std::function<bool(const QString&, QString*)>& write) {
  const QString path = QFileDialog::getSaveFileName(parent, caption, QString(), filter);
  if (path.isEmpty()) return;
  QString error;
  if (!write(path, &error)) {
    QMessageBox::warning(parent, caption, QObject::tr("Could not write %1: %2").arg(path, error));
    return;
  }
  if (auto* w = qobject_cast<QMainWindow*>(parent))
    w->statusBar()->showMessage(QObject::tr("Wrote %1").arg(path), 8000);
}

const QString kPictureFilter = QStringLiteral("PNG picture (*.png);;SVG drawing (*.svg)");
const QString kCsvFilter = QStringLiteral("CSV (*.csv)");

}  // namespace

CompareView* openCompareWindow(const QStringList& paths, QWidget* parent) {
  CompareView* view = nullptr;
  try {
    view = new CompareView(paths);
  } catch (const std::exception& e) {
    QMessageBox::warning(parent, QObject::tr("Compare Runs"),
                         QObject::tr("Could not open the runs: %1").arg(QString::fromUtf8(e.what())));
    return nullptr;
  }
  auto* window = new QMainWindow(parent);
  window->setAttribute(Qt::WA_DeleteOnClose);
  window->setWindowTitle(view->title());
  window->setCentralWidget(view);
  QMenu* file = window->menuBar()->addMenu(QObject::tr("&Export"));
  file->addAction(QObject::tr("Compared Runs as PNG or SVG..."), window, [window, view] {
    saveAs(window, QObject::tr("Export Compared Runs"), kPictureFilter,
           [view](const QString& path, QString* error) {
             return exportComparePicture(*view, path, 1800, error);
           });
  });
  file->addAction(QObject::tr("Compare Table as CSV..."), window, [window, view] {
    saveAs(
        window, QObject::tr("Export Compare Table"), kCsvFilter,
        [view](const QString& path, QString* error) { return exportTableCsv(*view->model(), path, error); });
  });
  QMenu* analysis = window->menuBar()->addMenu(QObject::tr("&Analysis"));
  analysis->addAction(QObject::tr("&Curves, Overlaid"), window,
                      [window, paths] { openCurvesWindow(paths, window); });
  window->resize(1600, 950);
  window->show();
  return view;
}

void addAnalysisMenus(QMainWindow* window, std::function<RunView*()> currentRun,
                      std::function<void()> compareRuns) {
  auto withRun = [window, currentRun](auto&& f) {
    return [window, currentRun, f] {
      if (RunView* run = currentRun())
        f(run);
      else
        window->statusBar()->showMessage(QObject::tr("Open a run first"), 5000);
    };
  };
  QMenu* analysis = window->menuBar()->addMenu(QObject::tr("&Analysis"));
  analysis->addAction(QObject::tr("&Selection Summary"), QKeySequence(Qt::CTRL | Qt::Key_E), window,
                      withRun([](RunView* run) { run->showSelectionPanel(); }));
  analysis->addAction(QObject::tr("&Breakdown"), QKeySequence(Qt::CTRL | Qt::Key_B), window,
                      withRun([](RunView* run) { run->setBreakdownVisible(!run->isBreakdownVisible()); }));
  analysis->addAction(QObject::tr("S&QL Query..."), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Q), window,
                      withRun([](RunView* run) { run->showQueryPanel(); }));
  analysis->addAction(QObject::tr("&MoE Load"), QKeySequence(Qt::CTRL | Qt::Key_M), window,
                      withRun([](RunView* run) { showMoePanel(run); }));
  analysis->addAction(
      QObject::tr("C&urves"), QKeySequence(Qt::CTRL | Qt::Key_U), window,
      withRun([window](RunView* run) { openCurvesWindow({runCurves(run->trace())}, window); }));
  analysis->addSeparator();
  analysis->addAction(QObject::tr("&Compare Runs..."), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C), window,
                      [compareRuns] { compareRuns(); });
  analysis->addAction(QObject::tr("&Plan..."), window, withRun([window](RunView* run) {
                        planFromRun(window, run->path(), run->trace().run,
                                    [window](const QStringList& paths) { openCompareWindow(paths, window); });
                      }));

  QMenu* exports = window->menuBar()->addMenu(QObject::tr("E&xport"));
  exports->addAction(QObject::tr("Visible &Timeline as PNG or SVG..."), window,
                     withRun([window](RunView* run) {
                       saveAs(window, QObject::tr("Export Timeline"), kPictureFilter,
                              [run](const QString& path, QString* error) {
                                return exportTimelinePicture(*run->timeline(), run->trace(), path, error);
                              });
                     }));
  exports->addAction(QObject::tr("&Breakdown as PNG or SVG..."), window, withRun([window](RunView* run) {
                       if (!run->isBreakdownVisible()) run->setBreakdownVisible(true);
                       saveAs(window, QObject::tr("Export Breakdown"), kPictureFilter,
                              [run](const QString& path, QString* error) {
                                return exportBreakdownPicture(*run->breakdown(), path, 1400, error);
                              });
                     }));
  exports->addSeparator();
  exports->addAction(QObject::tr("Run as &Chrome Trace JSON..."), window, withRun([window](RunView* run) {
                       saveAs(window, QObject::tr("Export Run"), QStringLiteral("Chrome Trace JSON (*.json)"),
                              [run](const QString& path, QString* error) {
                                return exportRun(run->trace(), QStringLiteral("chrome"), path, error);
                              });
                     }));
  exports->addAction(QObject::tr("Run as CSV of &Spans..."), window, withRun([window](RunView* run) {
                       saveAs(window, QObject::tr("Export Run"), kCsvFilter,
                              [run](const QString& path, QString* error) {
                                return exportRun(run->trace(), QStringLiteral("csv"), path, error);
                              });
                     }));
  exports->addSeparator();
  exports->addAction(QObject::tr("Breakdown &Table as CSV..."), window, withRun([window](RunView* run) {
                       if (!run->isBreakdownVisible()) run->setBreakdownVisible(true);
                       saveAs(window, QObject::tr("Export Breakdown Table"), kCsvFilter,
                              [run](const QString& path, QString* error) {
                                return exportTableCsv(*run->breakdown()->model(), path, error);
                              });
                     }));
  exports->addAction(QObject::tr("C&ommunication Table as CSV..."), window, withRun([window](RunView* run) {
                       if (!run->isBreakdownVisible()) run->setBreakdownVisible(true);
                       saveAs(window, QObject::tr("Export Communication Table"), kCsvFilter,
                              [run](const QString& path, QString* error) {
                                return exportTableCsv(*run->breakdown()->communicationModel(), path, error);
                              });
                     }));
}

}  // namespace moescope::ui
